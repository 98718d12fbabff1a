package suite

import (
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha512"
	"fmt"

	"github.com/cloudflare/circl/dh/x448"
)

// HPKEExportSender sets up a base-mode HPKE sender context to pub with info
// and returns the encapsulation and Export(exporterContext, length) of that
// context (RFC 9180, Sections 5.1 and 5.3). MLS uses it for external
// initialisation: kem_output and init_secret (RFC 9420, Section 8.3).
func (s *Suite) HPKEExportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error) {
	switch k := s.kem.(type) {
	case *stdKEM:
		pk, err := k.k.NewPublicKey(pub)
		if err != nil {
			return nil, nil, ErrInvalidKey
		}
		enc, sender, err := hpke.NewSender(pk, k.kdf, k.aead, info)
		if err != nil {
			return nil, nil, ErrInvalidKey
		}
		secret, err = sender.Export(string(exporterContext), length)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: HPKE export: %w", err)
		}
		return enc, secret, nil
	case *x448KEM:
		return k.exportSender(pub, info, exporterContext, length)
	}
	return nil, nil, ErrUnsupported
}

// HPKEExportReceiver is the receiving side of HPKEExportSender: it sets up a
// base-mode recipient context from enc with priv and info and returns
// Export(exporterContext, length).
func (s *Suite) HPKEExportReceiver(priv, enc, info, exporterContext []byte, length int) ([]byte, error) {
	switch k := s.kem.(type) {
	case *stdKEM:
		sk, err := k.privateKey(priv)
		if err != nil {
			return nil, err
		}
		r, err := hpke.NewRecipient(enc, sk, k.kdf, k.aead, info)
		if err != nil {
			return nil, ErrDecrypt
		}
		out, err := r.Export(string(exporterContext), length)
		if err != nil {
			return nil, fmt.Errorf("mls: HPKE export: %w", err)
		}
		return out, nil
	case *x448KEM:
		return k.exportReceiver(priv, enc, info, exporterContext, length)
	}
	return nil, ErrUnsupported
}

// exporterSecret is the exporter_secret of the base-mode key schedule
// (RFC 9180, Section 5.1).
func (k *x448KEM) exporterSecret(shared, info []byte) []byte {
	pskIDHash := labeledExtract(sha512.New, k.suiteID, nil, "psk_id_hash", nil)
	infoHash := labeledExtract(sha512.New, k.suiteID, nil, "info_hash", info)
	ctx := make([]byte, 0, 1+len(pskIDHash)+len(infoHash))
	ctx = append(ctx, 0x00) // mode_base
	ctx = append(append(ctx, pskIDHash...), infoHash...)
	secret := labeledExtract(sha512.New, k.suiteID, shared, "secret", nil)
	defer clear(secret)
	return labeledExpand(sha512.New, k.suiteID, secret, "exp", ctx, sha512.Size)
}

// export is Context.Export (RFC 9180, Section 5.3).
func (k *x448KEM) export(exporterSecret, exporterContext []byte, length int) []byte {
	return labeledExpand(sha512.New, k.suiteID, exporterSecret, "sec", exporterContext, length)
}

func (k *x448KEM) exportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error) {
	if len(pub) != x448.Size {
		return nil, nil, ErrInvalidKey
	}
	var sk, pkE, pkR, dh x448.Key
	if _, err := rand.Read(sk[:]); err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE ephemeral key: %w", err)
	}
	copy(pkR[:], pub)
	x448.KeyGen(&pkE, &sk)
	ok := x448.Shared(&dh, &sk, &pkR)
	clear(sk[:])
	if !ok {
		return nil, nil, ErrInvalidKey
	}
	enc = append([]byte(nil), pkE[:]...)
	shared := k.extractAndExpand(dh[:], enc, pub)
	clear(dh[:])
	es := k.exporterSecret(shared, info)
	clear(shared)
	defer clear(es)
	return enc, k.export(es, exporterContext, length), nil
}

func (k *x448KEM) exportReceiver(priv, enc, info, exporterContext []byte, length int) ([]byte, error) {
	if len(priv) != x448Nsk {
		return nil, ErrInvalidKey
	}
	if len(enc) != x448.Size {
		return nil, ErrDecrypt
	}
	var sk, pkR, pkE, dh x448.Key
	copy(sk[:], priv)
	copy(pkE[:], enc)
	x448.KeyGen(&pkR, &sk)
	ok := x448.Shared(&dh, &sk, &pkE)
	clear(sk[:])
	if !ok {
		return nil, ErrDecrypt
	}
	shared := k.extractAndExpand(dh[:], enc, pkR[:])
	clear(dh[:])
	es := k.exporterSecret(shared, info)
	clear(shared)
	defer clear(es)
	return k.export(es, exporterContext, length), nil
}
