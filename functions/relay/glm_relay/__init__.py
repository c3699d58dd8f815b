"""glm-relay: stream Zhipu GLM answers to a browser through a Lambda function URL.

The package is kept import-light on purpose: modules are imported by the runtime loop only when
the first invocation needs them, so a cold start pays for nothing it does not use.
"""

__version__ = "0.1.0"
