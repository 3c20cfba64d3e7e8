import pytest

from protocol import types
from tests.protocol.helpers import make_config


@pytest.fixture
def config() -> types.ConsortiumConfig:
    return make_config()
