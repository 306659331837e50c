"""A throw-away PKI made with openssl: a CA, the broker's server certificate (with the IP
and DNS names the rig uses), and client certificates for the agent and the cloud side."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _ssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path, server_ips: list[str], server_dns: list[str], clients: list[str]) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    _ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "400", "-subj", "/CN=posedge-hil-ca",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         cwd=d)
    san = ",".join([f"IP:{ip}" for ip in server_ips] + [f"DNS:{n}" for n in server_dns])
    names = {"server": san}
    names.update({c: None for c in clients})
    out = {"ca": d / "ca.pem"}
    for name, alt in names.items():
        _ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        ext = d / f"{name}.ext"
        lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature"]
        if alt:
            lines += [f"subjectAltName={alt}", "extendedKeyUsage=serverAuth"]
        else:
            lines += ["extendedKeyUsage=clientAuth"]
        ext.write_text("\n".join(lines) + "\n")
        _ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "400", "-extfile", ext.name, cwd=d)
        out[name] = (d / f"{name}.pem", d / f"{name}.key")
    return out
