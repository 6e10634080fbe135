"""Runtime features: environment variables from `envs` and dependencies
installed at deploy time, in each runtime."""

# e2e: both backends

import pytest

ENVS = ["GREETING=hello world", "WITH_EQUALS=a=b=c", "EMPTY="]
ENV_FUNCS = [("env", "python3"), ("envjs", "nodejs"), ("envbinary", "binary")]


@pytest.mark.parametrize("key,runtime", ENV_FUNCS, ids=[k for k, _ in ENV_FUNCS])
def test_env_vars_reach_the_function(daemon, key, runtime):
    daemon.ensure(key, envs=ENVS)
    cases = {b"GREETING": b"hello world", b"WITH_EQUALS": b"a=b=c"}
    for var, value in cases.items():
        r = daemon.call(key, var)
        assert r.status == 200, (var, r.status, r.text)
        # printenv (envbinary's fn.sh) ends its output with a newline.
        expected = value + b"\n" if runtime == "binary" else value
        assert r.body == expected, (var, r.body)
        c = daemon.coap(key, var, method="post")
        assert c.code == "2.05", c.log[-800:]
        assert c.payload == expected, (var, c.payload)


@pytest.mark.parametrize("key,runtime", ENV_FUNCS, ids=[k for k, _ in ENV_FUNCS])
def test_env_vars_replaced_on_redeploy(daemon, key, runtime):
    name = key + "two"
    daemon.deploy(key, name, envs=["GREETING=first"])
    r = daemon.call(name, b"GREETING")
    assert r.status == 200 and r.body.rstrip(b"\n") == b"first", (r.status, r.body)
    daemon.deploy(key, name, envs=["GREETING=second"])
    r = daemon.call(name, b"GREETING")
    assert r.status == 200 and r.body.rstrip(b"\n") == b"second", (r.status, r.body)


def test_python_requirements_installed_at_deploy(daemon):
    daemon.ensure("deps")
    r = daemon.call("deps")
    assert (r.status, r.body) == (200, b"1.16.0"), r.text
    c = daemon.coap("deps")
    assert (c.code, c.payload) == ("2.05", b"1.16.0"), c.log[-800:]


def test_nodejs_dependencies_installed_at_deploy(daemon):
    daemon.ensure("depsjs")
    r = daemon.call("depsjs")
    assert (r.status, r.body) == (200, b"true"), r.text
    c = daemon.coap("depsjs")
    assert (c.code, c.payload) == ("2.05", b"true"), c.log[-800:]
