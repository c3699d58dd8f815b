"""Local tooling around the Lambda package: Runtime API stand-in, emulator runner, local URL.

Nothing here is deployed; dev code imports ``glm_relay``, never the other way round.
"""
