"""A TLS-terminating TCP relay, so clients can reach a plain-HTTP server over HTTPS.

botocore only sends its default aws-chunked uploads with checksum trailers
over HTTPS; this relay lets a scenario see that behaviour against a server
started without TLS. The bytes are relayed untouched in both directions.
"""

import asyncio
import os
import ssl
import subprocess
import threading
from contextlib import contextmanager
from urllib.parse import urlparse


def _self_signed_cert(directory):
    cert = os.path.join(directory, "relay-cert.pem")
    key = os.path.join(directory, "relay-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


async def _pump(reader, writer):
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@contextmanager
def tls_relay(endpoint, directory):
    """Yields (https_endpoint, ca_cert_path) relaying to the plain-HTTP `endpoint`."""
    up = urlparse(endpoint)
    cert, key = _self_signed_cert(directory)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    loop = asyncio.new_event_loop()

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(up.hostname, up.port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pump(client_reader, up_writer), _pump(up_reader, client_writer))

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}", cert
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
