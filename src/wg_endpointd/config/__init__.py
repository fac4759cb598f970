"""Where configuration comes from: UCI syntax and reader, peers and settings, overrides,
groups' configuration, host-route advice. Imports only `core`.

`wg_endpointd.config` offers the reader's names (`load`, `build`, ...) and the value types
it builds (`Config`, `PeerConfig`, `HostSpec`, `Settings`)."""

from .peers import DEFAULT_PORT as DEFAULT_PORT
from .peers import FAMILIES as FAMILIES
from .peers import LOG_LEVELS as LOG_LEVELS
from .peers import Config as Config
from .peers import HostSpec as HostSpec
from .peers import PeerConfig as PeerConfig
from .peers import Settings as Settings
from .peers import build as build
from .peers import display_text as display_text
from .peers import load as load
from .peers import own_warnings as own_warnings
from .peers import read_settings as read_settings
