#!/usr/bin/env bash
# Makes a demo CA, a server certificate for localhost/127.0.0.1 and a client
# certificate (for mutual TLS) in DIR (default ./certs), with openssl.
# For trying TLS locally; use your own PKI in production.
set -euo pipefail
dir=${1:-certs}
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=pulsyon demo CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
  -extfile server.ext -out server.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=demo-client" -keyout client.key -out client.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
  -extfile client.ext -out client.pem 2>/dev/null
rm -f ./*.csr ./*.ext ca.srl
chmod 600 ./*.key
echo "wrote $(pwd)/{ca,server,client}.pem and their keys"
