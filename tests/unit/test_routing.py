"""Router state: shares from weights, server naming, weight limits."""

import pytest

from console.adapters.haproxy import SocketAddress
from console.domain.routing import RouterState, ServerNaming, ServerState, validate_weight
from console.domain.versions import AliasMap, normalise_version


def test_shares_count_only_live_ready_servers():
    state = RouterState("be", (
        ServerState("v1", "1", 0, True),
        ServerState("v2", "2", 90, True),
        ServerState("v3", "3", 10, True),
        ServerState("v4", "4", 50, False),
        ServerState("v5", "5", 50, True, admin_state="maint"),
        ServerState("backup", None, 5, True),
    ))
    shares = state.shares()
    assert shares == {"1": 0.0, "2": 0.9, "3": 0.1, "4": 0.0, "5": 0.0}
    assert state.weights() == {"1": 0, "2": 90, "3": 10, "4": 50, "5": 50}


def test_all_zero_weights_mean_no_share_anywhere():
    state = RouterState("be", (ServerState("v1", "1", 0, True),))
    assert state.shares() == {"1": 0.0}


def test_server_naming_round_trip():
    naming = ServerNaming("model-{version}-srv")
    assert naming.server("3") == "model-3-srv"
    assert naming.version("model-3-srv") == "3"
    assert naming.version("model-x-srv") is None
    with pytest.raises(ValueError, match="must contain"):
        ServerNaming("no-placeholder")


@pytest.mark.parametrize("weight", [-1, 257, 1.5, True, "3"])
def test_invalid_weights(weight):
    with pytest.raises(ValueError, match="0 to 256"):
        validate_weight(weight)


def test_versions_normalise_from_int_and_str():
    assert normalise_version(3) == "3"
    assert normalise_version(" 03 ") == "3"
    with pytest.raises(ValueError, match="not a model version number"):
        normalise_version("v3")
    aliases = AliasMap("m", {"champion": "2", "stable": "2", "challenger": "3"})
    assert aliases.aliases_of("2") == ("champion", "stable")


def test_socket_addresses():
    assert SocketAddress.parse("/run/haproxy.sock").path == "/run/haproxy.sock"
    assert SocketAddress.parse("unix:/x.sock").path == "/x.sock"
    tcp = SocketAddress.parse("127.0.0.1:9999")
    assert (tcp.host, tcp.port) == ("127.0.0.1", 9999)
