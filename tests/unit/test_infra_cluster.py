"""The configuration `pena infra up --brokers 3` gives its nodes (no JVM started here: the running
cluster is exercised by tests/faults/test_broker_failover.py), and that the single broker's stays as
it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from composition import cli, infra


def properties(node: infra.KafkaInfra) -> dict[str, str]:
    lines = node._write_config().read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PENA_HOME", str(tmp_path))
    return tmp_path


def test_three_combined_nodes_with_a_three_voter_quorum_and_replication_three(home: Path) -> None:
    cluster = infra.KafkaCluster(size=3, port=31092, controller_port=31192)
    nodes = cluster.nodes
    assert cluster.bootstrap == "127.0.0.1:31092,127.0.0.1:31093,127.0.0.1:31094"
    voters = "1@127.0.0.1:31192,2@127.0.0.1:31193,3@127.0.0.1:31194"
    cluster_ids = {node.cluster_id for node in nodes}
    assert len(cluster_ids) == 1
    assert "" not in cluster_ids
    assert {node.cluster_id for node in cluster.nodes} == cluster_ids  # kept across calls (cluster.id)
    for i, node in enumerate(nodes, start=1):
        props = properties(node)
        assert props["node.id"] == str(i)
        assert props["process.roles"] == "broker,controller"
        assert props["controller.quorum.voters"] == voters
        assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{31091 + i},CONTROLLER://127.0.0.1:{31191 + i}"
        assert props["log.dirs"] == str(home / "kafka-cluster" / f"node-{i}" / "data")
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["unclean.leader.election.enable"] == "false"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.replication.factor"] == "3"
        assert props["transaction.state.log.min.isr"] == "2"


def test_the_single_broker_keeps_its_one_node_configuration() -> None:
    props = properties(infra.KafkaInfra(port=31000, controller_port=31001))
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:31001"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["min.insync.replicas"] == "1"


def test_brokers_is_one_or_three() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["infra", "up"]).brokers == 1
    assert parser.parse_args(["infra", "up", "--brokers", "3"]).brokers == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["infra", "up", "--brokers", "2"])


def test_a_sasl_ssl_cluster_secures_every_node_with_one_ca_and_the_same_scram_users(home: Path) -> None:
    cluster = infra.KafkaCluster(size=3, port=31092, controller_port=31192, sasl_ssl=True)
    assert cluster.home == home / "kafka-cluster-sasl"
    nodes = cluster.nodes
    for i, node in enumerate(nodes, start=1):
        props = properties(node)
        assert props["listeners"] == f"SASL_SSL://127.0.0.1:{31091 + i},CONTROLLER://127.0.0.1:{31191 + i}"
        assert props["advertised.listeners"] == f"SASL_SSL://127.0.0.1:{31091 + i}"
        assert props["listener.security.protocol.map"] == "CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
        assert props["inter.broker.listener.name"] == "SASL_SSL"
        assert props["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert props["ssl.truststore.location"] == str(home / "kafka-cluster-sasl" / "security" / "ca.crt.pem")
        assert props["min.insync.replicas"] == "2"
    security = cluster.security
    assert security is not None
    password = security.password("admin")
    assert security.password_file("admin").read_text() == password + "\n"
    assert oct(security.password_file("admin").stat().st_mode & 0o777) == "0o600"
    assert f"SCRAM-SHA-512=[name=admin,password={password}]" in security.format_arguments()
    # a second look (a restart) keeps the CA and the passwords the nodes were formatted with
    ca = security.ca_file.read_bytes()
    properties(infra.KafkaCluster(size=3, port=31092, controller_port=31192, sasl_ssl=True).nodes[0])
    assert security.ca_file.read_bytes() == ca
    assert security.password("admin") == password


def test_sasl_ssl_is_for_the_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["infra", "up", "--brokers", "3", "--sasl-ssl"]).sasl_ssl
    assert cli._cmd_infra(parser.parse_args(["infra", "up", "--sasl-ssl"])) == cli.EXIT_USAGE
    assert "--brokers 3" in capsys.readouterr().err
