"""MQTT triggers (issue 19): `serve --mqtt` subscribes to the upload field
"triggers", calls the function per message (X-Mqtt-Topic), publishes the
output to reply_topic and to the MQTT 5 response topic, comes back after a
broker restart, and runs a QoS 1 message that was in flight at kill -9;
`mqtts://` with `--mqtt-ca` (a throwaway CA made with the openssl CLI).
A real mosquitto on a loopback port; mosquitto_pub / mosquitto_sub as
independent clients. Every wait polls with a deadline."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, fn_dir, fn_env, free_tcp_port, one_line_reason, wait_until, zip_folder_b64

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Broker:
    """mosquitto on 127.0.0.1 and a free port, persistence in its own temp
    dir, so that a restart keeps the node's session."""

    def __init__(self, users=None, tls=None):
        """tls: (cafile, certfile, keyfile) for a TLS listener; the clients
        then connect with --cafile."""
        self.tls = tls
        self.dir = tempfile.mkdtemp(prefix="tfmqtt-", dir="/tmp")
        # Run as root, mosquitto drops to its own user before it writes.
        os.chmod(self.dir, 0o777)
        self.port = free_tcp_port()
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        access = "allow_anonymous true\n"
        if users:
            passwords = os.path.join(self.dir, "passwords")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if not os.path.exists(passwords) else [])
                               + [passwords, user, password], check=True, timeout=10)
            os.chmod(passwords, 0o644)
            access = f"allow_anonymous false\npassword_file {passwords}\n"
        listener = f"listener {self.port} 127.0.0.1\n"
        if tls:
            listener += "cafile {}\ncertfile {}\nkeyfile {}\n".format(*tls)
        with open(self.conf, "w") as f:
            f.write(f"{listener}{access}persistence true\n"
                    f"persistence_location {self.dir}/\nautosave_interval 1\nlog_dest stderr\n")
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "mosquitto.log"), "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)

        def listening():
            assert self.proc.poll() is None, f"mosquitto exited: {self.log_text()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_until(listening, 10, what="mosquitto to listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its sessions
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def log_text(self):
        with open(os.path.join(self.dir, "mosquitto.log"), errors="replace") as f:
            return f.read()[-3000:]

    @property
    def url(self):
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def client_args(self):
        return ["-h", "127.0.0.1", "-p", str(self.port)] + (["--cafile", self.tls[0]] if self.tls else [])

    def publish(self, topic, payload, qos=1, response_topic=None, correlation=None):
        args = ["mosquitto_pub"] + self.client_args() + ["-V", "mqttv5", "-q", str(qos),
                "-t", topic, "-m", payload]
        if response_topic:
            args += ["-D", "publish", "response-topic", response_topic]
        if correlation:
            args += ["-D", "publish", "correlation-data", correlation]
        subprocess.run(args, check=True, timeout=10)


class Subscriber:
    """mosquitto_sub on a topic filter, each message one line
    `topic<TAB>correlation<TAB>payload`; ready once the broker acknowledged
    the subscription."""

    def __init__(self, broker, topic):
        self.proc = subprocess.Popen(
            # Line-buffered: -d prints the SUBACK with stdio, which buffers a pipe.
            ["stdbuf", "-oL", "mosquitto_sub"] + broker.client_args() + ["-V", "mqttv5", "-q", "1", "-d",
                                                                          "-t", topic, "-F", "MSG\t%t\t%D\t%p"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.lines = []
        try:
            wait_until(lambda: any("SUBACK" in l for l in self._read()), 10, what="mosquitto_sub to subscribe")
        except BaseException:
            self.close()
            raise

    def _read(self):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return self.lines
            self.lines.append(line.rstrip("\n"))

    def messages(self):
        return [tuple(l.split("\t", 3)[1:]) for l in self._read() if l.startswith("MSG\t")]

    def wait_for(self, count, deadline=20):
        wait_until(lambda: len(self.messages()) >= count, deadline, what=f"{count} message(s) on the subscriber")
        return self.messages()

    def close(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def broker():
    b = Broker()
    yield b
    b.stop()
    shutil.rmtree(b.dir, ignore_errors=True)


@pytest.fixture
def subscribers():
    made = []

    def factory(broker, topic):
        s = Subscriber(broker, topic)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()


def upload(d, key, name, triggers):
    return d.upload_raw({"name": name, "env": fn_env(key), "threads": 1, "zip": zip_folder_b64(fn_dir(key)),
                         "triggers": triggers})


def deploy(d, key, name, triggers):
    r = upload(d, key, name, triggers)
    assert r.status == 200, (r.status, r.text)


def function(d, name):
    r = d.mgmt("GET", f"/functions/{name}")
    assert r.status == 200, (r.status, r.text)
    return json.loads(r.text)


def trigger_states(d, name):
    return [t["state"] for t in function(d, name)["triggers"]]


def wait_subscribed(d, name, deadline=20):
    wait_until(lambda: set(trigger_states(d, name)) == {"subscribed"}, deadline,
               what=f"the triggers of {name} to be subscribed")


def metric(d, line_start):
    for line in d.mgmt("GET", "/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


def mqtt_daemon(make_daemon, broker, state_dir=None):
    return make_daemon(extra_args=["--mqtt", broker.url], state_dir=state_dir)


def test_messages_call_functions_and_replies_are_published(make_daemon, broker, subscribers):
    d = mqtt_daemon(make_daemon, broker)
    deploy(d, "show-headers", "headers", [{"type": "mqtt", "topic": "t1/+/temp", "reply_topic": "t1out/headers"}])
    deploy(d, "echo", "echo", [{"type": "mqtt", "topic": "t1logs/#", "reply_topic": "t1out/echo", "qos": 0}])
    wait_subscribed(d, "headers")
    wait_subscribed(d, "echo")
    shown = function(d, "echo")["triggers"]
    assert shown == [{"type": "mqtt", "topic": "t1logs/#", "reply_topic": "t1out/echo", "qos": 0,
                      "state": "subscribed", "reason": None}], shown
    out = subscribers(broker, "t1out/#")

    broker.publish("t1/kitchen/temp", "21.5")
    broker.publish("t1/kitchen/humidity", "40")  # matches no trigger
    broker.publish("t1logs/a/b", "hello", qos=0)
    got = dict((topic, payload) for topic, _, payload in out.wait_for(2))
    headers = json.loads(got["t1out/headers"])
    # The function sees the topic the message came on, not the filter.
    assert headers.get("X-Mqtt-Topic") == "t1/kitchen/temp", headers
    assert got["t1out/echo"] == "hello"

    assert metric(d, "tinyfaas_mqtt_connected") == 1
    assert metric(d, 'tinyfaas_calls_total{function="echo",protocol="mqtt"}') == 1
    assert metric(d, 'tinyfaas_mqtt_messages_total{function="headers"}') == 1
    assert metric(d, 'tinyfaas_mqtt_published_total{function="echo"}') == 1
    assert function(d, "headers")["protocols"]["mqtt"]["calls"] == 1


def test_mqtt5_response_topic_gets_the_output_with_its_correlation_data(make_daemon, broker, subscribers):
    d = mqtt_daemon(make_daemon, broker)
    deploy(d, "echo", "echo", [{"type": "mqtt", "topic": "t2/requests"}])
    wait_subscribed(d, "echo")
    replies = subscribers(broker, "t2/replies/#")
    broker.publish("t2/requests", "ping", response_topic="t2/replies/client7", correlation="req-42")
    assert replies.wait_for(1) == [("t2/replies/client7", "req-42", "ping")]


def test_function_error_publishes_nothing_and_is_logged(make_daemon, broker, subscribers):
    d = mqtt_daemon(make_daemon, broker)
    deploy(d, "fail", "fail", [{"type": "mqtt", "topic": "t3/in", "reply_topic": "t3/out"}])
    wait_subscribed(d, "fail")
    broker.publish("t3/in", "x")
    wait_until(lambda: metric(d, 'tinyfaas_mqtt_failed_total{function="fail"}') == 1, 20,
               what="the failed call to be counted")
    assert "MQTT message on t3/in: call failed" in d.mgmt("GET", "/logs?name=fail").text
    assert metric(d, 'tinyfaas_mqtt_published_total{function="fail"}') == 0


def test_bad_triggers_are_400_and_a_node_without_mqtt_shows_them_inactive(make_daemon):
    d = make_daemon()
    for triggers, reason in [
        ([{"type": "mqtt", "topic": "a/#/b"}], "triggers[0]: topic filter has # before its last level"),
        ([{"type": "mqtt", "topic": "a/b+"}],
         "triggers[0]: topic filter uses + or # inside a level (they must be a whole level)"),
        ([{"type": "mqtt", "topic": ""}], "triggers[0]: topic filter must not be empty"),
        ([{"type": "mqtt", "topic": "a", "qos": 2}], "triggers[0]: qos must be an integer between 0 and 1, got 2"),
        ([{"type": "mqtt", "topic": "a", "reply_topic": "out/+"}],
         "triggers[0]: reply_topic must not contain the wildcards + or #"),
        ([{"type": "amqp", "topic": "a"}], "triggers[0]: unknown type \"amqp\" (use mqtt)"),
    ]:
        r = upload(d, "echo", "echo", triggers)
        assert (r.status, one_line_reason(r.body)) == (400, reason), (triggers, r.status, r.text)
    assert "echo" not in d.list_names()
    deploy(d, "echo", "echo", [{"type": "mqtt", "topic": "a/+"}])
    shown = function(d, "echo")["triggers"]
    assert shown == [{"type": "mqtt", "topic": "a/+", "reply_topic": None, "qos": 1, "state": "inactive",
                      "reason": "this node runs without --mqtt"}], shown
    assert metric(d, "tinyfaas_mqtt_connected") is None


def test_broker_restart_and_daemon_restart_keep_the_trigger(make_daemon, broker, subscribers):
    d = mqtt_daemon(make_daemon, broker)
    deploy(d, "echo", "echo", [{"type": "mqtt", "topic": "t5/in", "reply_topic": "t5/out"}])
    wait_subscribed(d, "echo")

    broker.stop()
    wait_until(lambda: metric(d, "tinyfaas_mqtt_connected") == 0, 10, what="the node to see the broker gone")
    assert trigger_states(d, "echo") == ["disconnected"]
    assert function(d, "echo")["triggers"][0]["reason"]
    broker.start()
    # Reconnects by itself (backoff from 1 s) and subscribes again.
    wait_until(lambda: metric(d, "tinyfaas_mqtt_connected") == 1, 20, what="the node to reconnect")
    wait_subscribed(d, "echo")
    out = subscribers(broker, "t5/out")
    broker.publish("t5/in", "after broker restart")
    assert out.wait_for(1)[0][2] == "after broker restart"

    d.stop()
    back = mqtt_daemon(make_daemon, broker, state_dir=d.state_dir)
    wait_subscribed(back, "echo")
    broker.publish("t5/in", "after daemon restart")
    assert out.wait_for(2)[1][2] == "after daemon restart"

    # Deleting the function ends its subscription: the broker then holds
    # one subscription fewer for the node.
    assert back.mgmt("POST", "/delete", {"name": "echo"}).status == 200
    wait_until(lambda: metric(back, "tinyfaas_mqtt_subscriptions") == 0, 10, what="the subscription to go")
    assert metric(back, 'tinyfaas_mqtt_messages_total{function="echo"}') is None


def test_qos1_message_in_flight_at_kill_9_runs_after_the_restart(make_daemon, broker, subscribers):
    d = mqtt_daemon(make_daemon, broker)
    deploy(d, "sleep", "sleep", [{"type": "mqtt", "topic": "t6/work", "reply_topic": "t6/done", "qos": 1}])
    wait_subscribed(d, "sleep")
    done = subscribers(broker, "t6/done")
    broker.publish("t6/work", "3", qos=1)
    wait_until(lambda: function(d, "sleep")["protocols"]["mqtt"]["in_flight"] == 1, 10,
               what="the call to be running")
    d.kill_hard()  # SIGKILL in the middle of the call: no PUBACK went out
    assert done.messages() == []
    back = mqtt_daemon(make_daemon, broker, state_dir=d.state_dir)
    # The broker delivers the message again to the node's session.
    assert done.wait_for(1, deadline=40)[0][2] == "slept"
    assert "slept 3.0s" in back.mgmt("GET", "/logs?name=sleep").text


def test_sigterm_lets_a_qos1_call_finish_and_publish_its_reply(make_daemon, broker, subscribers):
    d = mqtt_daemon(make_daemon, broker)
    deploy(d, "sleep", "sleep", [{"type": "mqtt", "topic": "t9/work", "reply_topic": "t9/done"}])
    wait_subscribed(d, "sleep")
    done = subscribers(broker, "t9/done")
    broker.publish("t9/work", "1", qos=1)
    wait_until(lambda: function(d, "sleep")["protocols"]["mqtt"]["in_flight"] == 1, 10,
               what="the call to be running")
    d.stop()  # SIGTERM: the call drains, then exit 0 (asserted by stop())
    assert done.wait_for(1)[0][2] == "slept"


def test_qos0_flood_beyond_the_in_flight_limit_is_dropped_and_counted(make_daemon, broker):
    d = mqtt_daemon(make_daemon, broker)
    deploy(d, "sleep", "sleep", [{"type": "mqtt", "topic": "t7/flood", "qos": 0}])
    wait_subscribed(d, "sleep")
    sent = 600
    # -l: one message per line of stdin, all on one connection, at once.
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv5", "-q", "0",
                    "-t", "t7/flood", "-l"], input="0.2\n" * sent, text=True, check=True, timeout=30)

    def counted(name):
        return metric(d, f'tinyfaas_mqtt_{name}_total{{function="sleep"}}') or 0

    # 256 calls at most run at once; the rest is dropped, and each message
    # is either run or dropped.
    wait_until(lambda: counted("messages") + counted("dropped") == sent, 60, interval=0.2,
               what="every message to be run or dropped")
    assert counted("dropped") > 0 and counted("messages") >= 256, (counted("messages"), counted("dropped"))
    wait_until(lambda: function(d, "sleep")["protocols"]["mqtt"]["in_flight"] == 0, 60, interval=0.2,
               what="the calls to end")


def test_a_bad_mqtt_url_stops_the_start_with_a_reason(tmp_path):
    r = subprocess.run([str(BIN), "serve", "--management-port", "0", "--http-port", "-1", "--coap-port", "-1",
                        "--state-dir", str(tmp_path / "state"), "--backend", "process",
                        "--mqtt", "http://127.0.0.1:1883"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert '--mqtt must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got "http://127.0.0.1:1883"' in r.stderr, r.stderr


def test_credentials_file_logs_in_and_a_refusal_shows_in_functions(make_daemon, tmp_path):
    b = Broker(users={"node1": "s3cret with spaces"})
    try:
        credentials = tmp_path / "mqtt-credentials"
        credentials.write_text("node1\ns3cret with spaces\n")
        d = make_daemon(extra_args=["--mqtt", b.url, "--mqtt-credentials", str(credentials)])
        deploy(d, "echo", "echo", [{"type": "mqtt", "topic": "t8/in"}])
        wait_subscribed(d, "echo")
        # Without them the broker refuses the node: the trigger says why.
        anonymous = make_daemon(extra_args=["--mqtt", b.url])
        deploy(anonymous, "echo", "echo", [{"type": "mqtt", "topic": "t8/in"}])
        wait_until(lambda: function(anonymous, "echo")["triggers"][0]["reason"], 10, what="a connect error")
        trigger = function(anonymous, "echo")["triggers"][0]
        assert trigger["state"] == "disconnected" and "authori" in trigger["reason"].lower(), trigger
    finally:
        b.stop()
        shutil.rmtree(b.dir, ignore_errors=True)


def make_ca(folder, name):
    """A throwaway CA (folder/name.pem, name.key), valid for a day."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", f"/CN={name}", "-keyout", f"{folder}/{name}.key", "-out",
                    f"{folder}/{name}.pem"], check=True, capture_output=True, timeout=30)
    return f"{folder}/{name}.pem"


@pytest.fixture(scope="module")
def tls_broker():
    """mosquitto with a TLS listener whose certificate (for 127.0.0.1 and
    localhost) a private CA signed; `other_ca` is a CA that did not."""
    folder = tempfile.mkdtemp(prefix="tfmqtt-tls-", dir="/tmp")
    ca = make_ca(folder, "ca")
    other_ca = make_ca(folder, "other-ca")
    key, cert = f"{folder}/server.key", f"{folder}/server.pem"
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", f"{folder}/server.csr"],
                   check=True, capture_output=True, timeout=30)
    with open(f"{folder}/san.ext", "w") as f:
        f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    subprocess.run(["openssl", "x509", "-req", "-in", f"{folder}/server.csr", "-CA", ca, "-CAkey", f"{folder}/ca.key",
                    "-CAcreateserial", "-days", "1", "-extfile", f"{folder}/san.ext", "-out", cert],
                   check=True, capture_output=True, timeout=30)
    # mosquitto drops to its own user when run as root.
    os.chmod(folder, 0o755)
    os.chmod(key, 0o644)
    b = Broker(tls=(ca, cert, key))
    b.other_ca = other_ca
    yield b
    b.stop()
    shutil.rmtree(b.dir, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def test_mqtts_with_a_private_ca_calls_and_replies(make_daemon, tls_broker, subscribers):
    d = make_daemon(extra_args=["--mqtt", tls_broker.url, "--mqtt-ca", tls_broker.tls[0]])
    deploy(d, "echo", "echo", [{"type": "mqtt", "topic": "t10/in", "reply_topic": "t10/out"}])
    wait_subscribed(d, "echo")
    out = subscribers(tls_broker, "t10/out")
    tls_broker.publish("t10/in", "over tls")
    assert [payload for _, _, payload in out.wait_for(1)] == ["over tls"]


def test_mqtts_refuses_a_broker_its_ca_did_not_sign(make_daemon, tls_broker):
    # The attacker's broker: a certificate from a CA the node was not told
    # to trust, or that only the system's store would have to know.
    strangers = [make_daemon(extra_args=["--mqtt", tls_broker.url, "--mqtt-ca", tls_broker.other_ca]),
                 make_daemon(extra_args=["--mqtt", tls_broker.url])]
    trusting = make_daemon(extra_args=["--mqtt", tls_broker.url, "--mqtt-ca", tls_broker.tls[0]])
    for d in strangers + [trusting]:
        deploy(d, "echo", "echo", [{"type": "mqtt", "topic": "t11/in"}])
    for d in strangers:
        wait_until(lambda: function(d, "echo")["triggers"][0]["reason"], 10, what="a connect error")
    wait_subscribed(trusting, "echo")
    tls_broker.publish("t11/in", "for the trusting node only")
    wait_until(lambda: function(trusting, "echo")["protocols"]["mqtt"]["calls"] == 1, 10, what="the trusted call")
    for d in strangers:
        echo = function(d, "echo")
        trigger = echo["triggers"][0]
        assert trigger["state"] == "disconnected", trigger
        assert any(w in trigger["reason"].lower() for w in ("certificate", "tls", "ssl")), trigger
        assert echo["protocols"]["mqtt"]["calls"] == 0, echo["protocols"]
        assert metric(d, "tinyfaas_mqtt_connected") == 0


@pytest.mark.parametrize("url, ca, reason", [
    ("mqtts://127.0.0.1:8883", "missing.pem", "cannot read --mqtt-ca "),
    ("mqtt://127.0.0.1:1883", "ca.pem", "--mqtt-ca needs mqtts:// (TLS) in --mqtt"),
])
def test_a_bad_mqtt_ca_stops_the_start_with_a_reason(tmp_path, url, ca, reason):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    r = subprocess.run([str(BIN), "serve", "--management-port", "0", "--http-port", "-1", "--coap-port", "-1",
                        "--state-dir", str(tmp_path / "state"), "--backend", "process",
                        "--mqtt", url, "--mqtt-ca", str(tmp_path / ca)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert reason in r.stderr, r.stderr
