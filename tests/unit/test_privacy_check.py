"""The tests' own NIK detector: it must find a stand-alone 16-digit number and must not mistake random
trace context, which is hex and now and then all digits, for one."""

from tests.privacy import sixteen_digit_numbers


def test_a_nik_in_json_is_found() -> None:
    assert sixteen_digit_numbers('{"nik": "1371014508900001"}') == ["1371014508900001"]
    assert sixteen_digit_numbers("kk 1371012001150099, nik 1371014508900001") == [
        "1371012001150099",
        "1371014508900001",
    ]


def test_all_digit_trace_and_span_ids_are_not_taken_for_a_nik() -> None:
    traceparent = "00-0123456789abcdef0123456789abcdef-1234567890123456-01"
    assert sixteen_digit_numbers(f'{{"traceparent": "{traceparent}"}}') == []
    assert sixteen_digit_numbers('{"trace_id": "ab12345678901234567890123456cdef"}') == []


def test_longer_or_shorter_digit_runs_are_not_a_nik() -> None:
    assert sixteen_digit_numbers("12345678901234567 and 123456789012345") == []
