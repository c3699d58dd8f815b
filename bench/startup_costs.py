"""Two parts of a cold start timed alone, each in a fresh interpreter in a Lambda-shaped task root.

- ``import_ms``: the cumulative import time of a module (``python -X importtime``), to set the
  handler's import beside the baseline app module's.
- ``secret_read_ms``: the first secret read in a new process, per option (``SECRET_OPTIONS``: the
  SDK, the extension over raw asyncio, over ``http.client``, over a new httpx client), from the
  first import the option needs to the secret string, to show what each way costs cold.
"""

from __future__ import annotations

import re
import subprocess

from bench.common import Backends
from bench.lambda_site import LambdaSite

IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)\s*$")

# One fresh interpreter per option; each prints the milliseconds from its first import to the
# secret string. glm_relay.handler is imported first, as the runtime loop has by then.
_SECRET_PRELUDE = """\
import asyncio, os, time
import glm_relay.handler
ARN = os.environ["ZHIPU_SECRET_ID"]
PORT = int(os.environ["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"])
TOKEN = os.environ["AWS_SESSION_TOKEN"]
"""
SECRET_OPTIONS = {
    "sdk": """
t = time.perf_counter()
from glm_relay.secrets.sdk import PowertoolsSecretSource
value = asyncio.run(PowertoolsSecretSource(ARN, max_age_seconds=900).fetch())
""",
    "extension": """
t = time.perf_counter()
from glm_relay.secrets.extension import ExtensionSecretSource
value = asyncio.run(ExtensionSecretSource(ARN, max_age_seconds=900, host="127.0.0.1").fetch())
""",
    "http.client": """
t = time.perf_counter()
import http.client, json, urllib.parse
def get():
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    path = "/secretsmanager/get?secretId=" + urllib.parse.quote(ARN, safe="")
    connection.request("GET", path, headers={"X-Aws-Parameters-Secrets-Token": TOKEN})
    return json.loads(connection.getresponse().read())["SecretString"]
value = asyncio.run(asyncio.to_thread(get))
""",
    "httpx": """
t = time.perf_counter()
import httpx
async def get():
    async with httpx.AsyncClient(trust_env=False) as client:
        answer = await client.get(
            f"http://127.0.0.1:{PORT}/secretsmanager/get", params={"secretId": ARN},
            headers={"X-Aws-Parameters-Secrets-Token": TOKEN},
        )
        return answer.json()["SecretString"]
value = asyncio.run(get())
""",
}
_SECRET_EPILOGUE = """
assert value.startswith("benchid."), value
print((time.perf_counter() - t) * 1000)
"""


def import_ms(site: LambdaSite, module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter, from ``-X importtime``."""
    result = subprocess.run(
        site.python("-X", "importtime", "-c", f"import {module}"),
        env=site.env(repository=module.startswith("bench.")),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for line in reversed(result.stderr.splitlines()):
        match = IMPORT_LINE.match(line)
        if match and match.group(2) == module:
            return int(match.group(1)) / 1000
    raise RuntimeError(f"no import line for {module}:\n{result.stderr[-2000:]}")


def secret_read_ms(backends: Backends, site: LambdaSite, option: str) -> float:
    """Milliseconds of one ``SECRET_OPTIONS`` read, with the extension stand-in's cache emptied
    first, as a new sandbox's extension starts."""
    backends.standin.clear_cache()
    code = _SECRET_PRELUDE + SECRET_OPTIONS[option] + _SECRET_EPILOGUE
    result = subprocess.run(
        site.python("-c", code),
        env=site.env(backends.relay_env("extension")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"secret read ({option}) failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])
