package mls

import (
	"bytes"
	"crypto/x509"
)

// sameX509Subject reports whether two X.509 credentials' leaf certificates
// name the same subject.
func sameX509Subject(a, b Credential) bool {
	if len(a.Certificates) == 0 || len(b.Certificates) == 0 {
		return false
	}
	ca, err1 := x509.ParseCertificate(a.Certificates[0])
	cb, err2 := x509.ParseCertificate(b.Certificates[0])
	if err1 != nil || err2 != nil {
		return false
	}
	return bytes.Equal(ca.RawSubject, cb.RawSubject)
}
