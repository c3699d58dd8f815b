"""``python -m glm_relay.runtime``: what the bootstrap execs."""

from glm_relay.runtime.loop import main

main()
