"""The lab's private CA and the one server certificate every lab listener presents.

Made with ``cryptography`` when a lab starts fresh: an EC P-256 CA (its key 0600 in the
secrets dir, dropped with the lab) signs a certificate for ``127.0.0.1``, ``localhost`` and
every network-namespace address the lab uses, for server and client auth (NATS routes
verify each other). ``ca.pem`` is public: tools and the console trust it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca.key"  # in the secrets dir
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"  # in the secrets dir
VALID_DAYS = 30


@dataclass(frozen=True)
class LabPki:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def paths(tls_dir: Path, secrets: Path) -> LabPki:
    return LabPki(tls_dir / CA_CERT, tls_dir / SERVER_CERT, secrets / SERVER_KEY)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def create(tls_dir: Path, secrets: Path, addresses: list[str],
           write_secret) -> LabPki:
    """A fresh CA and server certificate for ``addresses`` (IPs) plus localhost."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opsconsole lab CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    ips = sorted({"127.0.0.1", *addresses})
    san = [x509.DNSName("localhost"), *(x509.IPAddress(ipaddress.ip_address(a)) for a in ips)]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opsconsole lab")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    write_secret(CA_KEY, _pem_key(ca_key))
    write_secret(SERVER_KEY, _pem_key(key))
    out = paths(tls_dir, secrets)
    out.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                                + ca.public_bytes(serialization.Encoding.PEM))
    return out
