package suite

// HPKEExportSender sets up a base-mode HPKE sender context to pub with info
// and returns the encapsulation and Export(exporterContext, length) of that
// context (RFC 9180, Sections 5.1 and 5.3). MLS uses it for external
// initialisation (RFC 9420, Section 8.3):
//
//	kem_output, context = SetupBaseS(external_pub, "")
//	init_secret = context.export("MLS 1.0 external init secret", KDF.Nh)
//
// It returns ErrInvalidKey if pub is malformed or a low-order point. length
// must be at most 255*Nh of the HPKE KDF.
func (s *Suite) HPKEExportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error) {
	return s.kem.exportSender(pub, info, exporterContext, length)
}

// HPKEExportReceiver is the receiving side of HPKEExportSender: it sets up a
// base-mode recipient context from enc with priv and info and returns
// Export(exporterContext, length). It returns ErrInvalidKey if priv is
// malformed and ErrDecrypt if enc is. A wrong key does not fail: it gives a
// different secret, which the caller detects later (for external init, at
// the confirmation tag).
func (s *Suite) HPKEExportReceiver(priv, enc, info, exporterContext []byte, length int) ([]byte, error) {
	return s.kem.exportReceiver(priv, enc, info, exporterContext, length)
}
