package pki

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// ServerTLS is the configuration of the HTTPS API. Client certificates are
// optional because operators authenticate with bearer tokens, while nodes
// present their certificates; a certificate that is presented must verify
// against the cluster CA.
func ServerTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	pool, err := CertPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: server TLS: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: server TLS: node certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}, nil
}

// PeerTLS is the configuration for node-to-node connections (raft and the
// internal API), used on both the dialing and the accepting side: each end
// presents its node certificate and accepts only certificates from the
// cluster CA. A dialer must set ServerName (tls.Dial does it from the address)
// because node certificates are verified by their IP SANs.
func PeerTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	pool, err := CertPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: peer TLS: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: peer TLS: node certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		RootCAs:      pool,
	}, nil
}

// ClientTLS is the CLI's configuration: it verifies the server against the
// cluster CA. The CLI connects by IP address and node certificates carry their
// addresses as IP SANs, so ordinary hostname verification applies.
// certPEM and keyPEM are optional (nil for token authentication) but must be
// given together.
func ClientTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	pool, err := CertPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: client TLS: %w", err)
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
	}
	switch {
	case len(certPEM) == 0 && len(keyPEM) == 0:
	case len(certPEM) == 0 || len(keyPEM) == 0:
		return nil, errors.New("pki: client TLS: a client certificate and its key must be given together")
	default:
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("pki: client TLS: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// PeerName returns the common name (the node name) of the peer's verified
// certificate: the client's on a server, the server's on a client. It reports
// false when the peer presented no certificate or it was not verified, so an
// unverified name can never be trusted by mistake.
func PeerName(state tls.ConnectionState) (string, bool) {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return "", false
	}
	cn := state.VerifiedChains[0][0].Subject.CommonName
	if cn == "" {
		return "", false
	}
	return cn, true
}
