package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"time"
)

// clockSkew backdates NotBefore so that a certificate issued on one node is
// already valid on a peer whose clock runs a little behind.
const clockSkew = 5 * time.Minute

// CA is the cluster's certificate authority: a self-signed ECDSA P-256
// certificate and its private key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey

	certPEM []byte
}

// NewCA creates a self-signed CA named "vigil <clusterName> CA", valid for validFor.
func NewCA(clusterName string, validFor time.Duration) (*CA, error) {
	if clusterName == "" {
		return nil, errors.New("pki: new CA: empty cluster name")
	}
	if validFor <= 0 {
		return nil, fmt.Errorf("pki: new CA: validity %v is not positive", validFor)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: new CA: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("pki: new CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "vigil " + clusterName + " CA",
			Organization: []string{"vigil " + clusterName},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs node certificates only, never intermediate CAs.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: new CA: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: new CA: parse created certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, certPEM: encodeCert(der)}, nil
}

// CertPEM returns the CA certificate in PEM form, as written to ca.crt.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// KeyPEM returns the CA private key in PKCS#8 PEM form, as written to ca.key.
func (ca *CA) KeyPEM() ([]byte, error) {
	return encodeKey(ca.Key)
}

// IssueNode issues a certificate for node name, usable both as a TLS server and
// as a TLS client, since nodes dial each other and accept each other's calls.
// Its CN and only DNS name are the node name; its IP SANs are the node's own
// addresses, which lets clients that connect by address verify it normally.
// The certificate never outlives the CA: a leaf is useless past its issuer.
func (ca *CA) IssueNode(name string, addrs []netip.Addr, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if name == "" {
		return nil, nil, errors.New("pki: issue node certificate: empty node name")
	}
	if validFor <= 0 {
		return nil, nil, fmt.Errorf("pki: issue node certificate for %q: validity %v is not positive", name, validFor)
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		if !a.IsValid() {
			return nil, nil, fmt.Errorf("pki: issue node certificate for %q: invalid address", name)
		}
		if a.Zone() != "" {
			// X.509 IP SANs cannot carry a zone, so such an address could never be verified.
			return nil, nil, fmt.Errorf("pki: issue node certificate for %q: address %s has a zone", name, a)
		}
		ips = append(ips, net.IP(a.Unmap().AsSlice()))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue node certificate for %q: generate key: %w", name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue node certificate for %q: %w", name, err)
	}
	now := time.Now()
	notAfter := now.Add(validFor)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   name,
			Organization: ca.Cert.Subject.Organization,
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{name},
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue node certificate for %q: %w", name, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue node certificate for %q: %w", name, err)
	}
	return encodeCert(der), keyPEM, nil
}

// LoadCA reads the CA certificate and key written by `vigil init`.
func LoadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w (files %s, %s)", err, certPath, keyPath)
	}
	return ca, nil
}

// ParseCA parses a PEM CA certificate and key and checks that they belong together.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("pki: parse CA certificate: not a CA certificate")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA key: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("pki: parse CA: key does not match certificate")
	}
	return &CA{Cert: cert, Key: key, certPEM: encodeCert(cert.Raw)}, nil
}

func newSerial() (*big.Int, error) {
	// 128 random bits: unique without any issuing state to keep.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return serial, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// parseKey accepts PKCS#8 (what we write) and SEC 1 (what openssl ecparam writes).
func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#8 key: %w", err)
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want ECDSA", k)
		}
		return ec, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse EC key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
}

// CertPool returns a pool holding the PEM certificates in caPEM.
func CertPool(caPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("pki: no CA certificate found in PEM data")
	}
	return pool, nil
}
