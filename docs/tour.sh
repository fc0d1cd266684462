#!/usr/bin/env bash
# A five-minute tour of PENA with curl, against `make dev` (http://127.0.0.1:8000).
# Run it whole (`bash docs/tour.sh`) or paste it step by step. Safe to run again: it resets the
# demo clock and reuses what already exists (duplicates answer 409 with `existing_id`).
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8000}
PENA=${PENA:-.venv/bin/pena}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
call() { curl -sS -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }

# 0. who am I: a local dev token (production verifies the ministry's JWKS instead)
TOKEN=$($PENA token --role admin --sub tour-admin)
APPROVER=$($PENA token --role approver --unit 13 --sub tour-approver)  # acts within a region
VERIFIER=$($PENA token --role verifier --unit 13 --sub tour-verifier)
curl -sS "$BASE/readyz"; echo
call -X PUT "$BASE/v1/ops/clock" -d '{"offset": null}' >/dev/null

# 1. register a participant (the NIK's birth part says 20-07-1995 +40: a woman; a new serial each run,
#    so a second run registers a sister record, which the registry flags as a possible duplicate)
SERIAL=$(printf '%04d' $(( RANDOM % 9000 + 1 )))
PARTICIPANT=$(call -X POST "$BASE/v1/participants" -d '{
  "nik": "137101600795'"$SERIAL"'", "kk_number": "1371010101150007", "full_name": "Rahmi Yusuf",
  "birth_date": "1995-07-20", "sex": "F", "region_code": "13.71.01.1001", "address": "Jl. Contoh No. 7",
  "household_size": 4, "business_field": "kuliner", "business_description": "rendang kemasan",
  "assistance_programmes": ["PKH", "BPNT"], "dtsen_decile": 1, "baseline_monthly_income": 1200000,
  "consent": {"purpose": "PENA programme participation", "given_on": "2026-10-01", "recorded_by": "tour-admin"}}' \
  | json 'd.get("id") or d["existing_id"]')
echo "participant $PARTICIPANT"
call "$BASE/v1/participants/$PARTICIPANT" | json '{k: d[k] for k in ("nik", "status", "region_code")}'

# 2. a training centre and a cooked-meals batch with five sessions in the past weeks
CENTRE=$(call -X POST "$BASE/v1/training-centres" \
  -d '{"name": "BBPPKS Padang", "code": "BBPPKS-PADANG", "region_code": "1371"}' | json 'd.get("id") or d["existing_id"]')
day() { date -u -d "$1 days ago" +%F; }
BATCH=$(call -X POST "$BASE/v1/batches" -d "{
  \"centre_id\": \"$CENTRE\", \"name\": \"Angkatan Makanan Berat\", \"business_field\": \"kuliner\",
  \"method\": \"life_skill_training\", \"start_date\": \"$(day 21)\", \"end_date\": \"$(day 10)\",
  \"region_code\": \"1371011001\", \"capacity\": 30,
  \"sessions\": [{\"date\": \"$(day 20)\", \"module\": \"pena_introduction\"},
                 {\"date\": \"$(day 17)\", \"module\": \"motivation_work_ethic\"},
                 {\"date\": \"$(day 14)\", \"module\": \"social_entrepreneurship_basics\"},
                 {\"date\": \"$(day 12)\", \"module\": \"technical_skills\"},
                 {\"date\": \"$(day 11)\", \"module\": \"technical_skills\"}]}" | json 'd["id"]')
call -X POST "$BASE/v1/batches/$BATCH/status" -d '{"status": "open"}' >/dev/null
call -X POST "$BASE/v1/batches/$BATCH/enrolments" -d "{\"participant_id\": \"$PARTICIPANT\", \"exit_agreement\": true}" | json 'd["status"]'
call -X POST "$BASE/v1/batches/$BATCH/status" -d '{"status": "running"}' >/dev/null
for SESSION in $(call "$BASE/v1/batches/$BATCH" | json '" ".join(s["id"] for s in d["sessions"])'); do
  call -X POST "$BASE/v1/batches/$BATCH/attendance" -d "{\"session_id\": \"$SESSION\", \"present\": [\"$PARTICIPANT\"]}" >/dev/null
done
call -X POST "$BASE/v1/batches/$BATCH/close" -d '{}' | json 'd'

# 3. monev: training.completed scheduled a follow-up 3 calendar months on; move the demo clock there
TASK=$(call "$BASE/v1/monev/tasks?participant_id=$PARTICIPANT&status=scheduled" | json 'd["items"][0]["id"]')
NOW=$(call -X PUT "$BASE/v1/ops/clock" -d '{"offset": "P3M5D"}' | json 'd["now"][:10]')
for _ in $(seq 40); do
  [ "$(call "$BASE/v1/monev/tasks/$TASK" | json 'd["status"]')" = due ] && break; sleep 0.5
done
call -X POST "$BASE/v1/monev/tasks/$TASK/assignment" -d '{"facilitator": "tour-facilitator"}' >/dev/null
YEAR=${NOW:0:4}
# the reference figures the graduation policy compares against (example values for the tour)
call -X PUT "$BASE/v1/graduation/reference/minimum-wages" -d "[{\"level\": \"umk\", \"region_code\": \"1371\",
  \"year\": $YEAR, \"amount\": 3000000, \"source\": \"tour example\", \"is_example\": true}]" >/dev/null
call -X PUT "$BASE/v1/graduation/reference/poverty-lines" -d "[{\"year\": $YEAR, \"amount\": 400000,
  \"source\": \"tour example\", \"is_example\": true}]" >/dev/null
call -X POST "$BASE/v1/monev/tasks/$TASK/survey" -d "{
  \"visit_date\": \"$NOW\", \"respondent\": \"participant\", \"business_status\": \"active\",
  \"monthly_revenue\": 7000000, \"monthly_household_income\": 4500000, \"household_size\": 4,
  \"workers_employed\": 1, \"business_assets\": 9000000, \"savings\": 1500000, \"assistance_still_received\": [],
  \"welfare_self_assessment\": 4, \"voluntary_exit_statement\": true}" | json 'd.get("measures") or d'

# 4. graduation: assessed against the policy in force; a verifier checks, another person approves
for _ in $(seq 40); do
  ASSESSMENT=$(call "$BASE/v1/graduation/assessments?participant_id=$PARTICIPANT" | json 'd["items"][0]["id"] if d["items"] else ""')
  [ -n "$ASSESSMENT" ] && break; sleep 0.5
done
call "$BASE/v1/graduation/assessments/$ASSESSMENT" | json '(d["outcome"], [(c["criterion"], c["passed"]) for c in d["criteria"]])'
TOKEN=$VERIFIER call -X POST "$BASE/v1/graduation/assessments/$ASSESSMENT/verification" -d '{"evidence_checked": true}' >/dev/null
TOKEN=$APPROVER call -X POST "$BASE/v1/graduation/assessments/$ASSESSMENT/decision" \
  -d '{"decision": "approve", "kind": "sejahtera_mandiri", "reason": "household income above the UMK"}' \
  | json '{k: d[k] for k in ("outcome", "kind", "effective_date", "mentoring_until")}'

# 5. graduation.decided reached the registry
for _ in $(seq 40); do
  STATUS=$(call "$BASE/v1/participants/$PARTICIPANT" | json 'd["status"]'); [ "$STATUS" = graduated ] && break; sleep 0.5
done
echo "registry status: $STATUS"
call "$BASE/v1/graduation/statistics?as_of=$NOW" | json 'd["totals"]'
call -X PUT "$BASE/v1/ops/clock" -d '{"offset": null}' >/dev/null
[ "$STATUS" = graduated ]
