import pytest

from harness import Server


@pytest.fixture
def start_server(tmp_path):
    """Starts real servers; every one is stopped at the end of the test."""
    servers = []

    def start(*args, **kw):
        s = Server(tmp_path, *args, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture
def peers():
    """Collects peers so they are closed after the test."""
    made = []
    yield made
    for p in made:
        p.close()
