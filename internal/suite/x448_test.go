package suite

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestX448RFC9180 checks the X448 HPKE against the RFC 9180 test vectors
// (the CFRG draft-irtf-cfrg-hpke test-vectors.json that Appendix A is taken
// from; RFC 9180's text itself prints no X448 case): DHKEM(X448, HKDF-SHA512),
// HKDF-SHA512, mode_base, with AES-256-GCM and ChaCha20-Poly1305, first
// encryption and the first three exports.
func TestX448RFC9180(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	info := h("4f6465206f6e2061204772656369616e2055726e") // "Ode on a Grecian Urn"
	aad := h("436f756e742d30")                            // "Count-0"
	pt := h("4265617574792069732074727574682c20747275746820626561757479")
	for _, v := range []struct {
		name                                  string
		aead                                  aeadAlg
		ikmR, skRm, pkRm, ikmE, skEm, enc, ct string
		shared                                string
		exports                               [3]string // contexts "", "00", "TestContext"; L = 32
	}{{
		name:   "AES-256-GCM",
		aead:   aesGCM256,
		ikmR:   "93e714430d3cb00e8e8a03dd820dcbcc7f0141f93c63a7dede2dfb152b5b23982a1a55f2d86dd9e0f5a0f53b9c21605257ec1349d7f89e53",
		skRm:   "c4e72a57af1640806c01617b947ee6d1bbe5eb1a5b4616fb705a5d2ed30b7f4317365c504249750e090805d44a2ddc2970172414a90a09e5",
		pkRm:   "d920db89afdb25df110a44cf0d7dc4e4d4b74f09ceaba5e76a12d3cafefcd962e244804a58bfd12303732be21d511f877ddc2ed694447b3d",
		ikmE:   "39ed47496020ec7c2afc214425fc6a15fb6f1e16759c2b066265b6624c84ed50ee6c3129d9ed71318b19a96e5c5cc6b27aca5e1ae9cdc7e0",
		skEm:   "9abfbdf9132c22e95f4d25dc6ae16ca1269d3692e75f32e3aeecd4aee7cb8edb4e26da9422afb940c42caf388a1d1215b405795a28d43a60",
		enc:    "390f2971ca97d513915a2bc5aac0cb81b832d9424d2264eaa9e868d80862edd7918276883a8d0434309e049408fec2340ae5799702f948d7",
		ct:     "6a5ef0f8c88a17c6d26bee63b4468cd43360eb69804fb392d8c9b8eba2f9bd806726c7d99cb9073022000ce41a",
		shared: "081f8572019ac78daca420cf23c5183027e9bdaa7fe4b5f8e55b2ff24bc5cdc8bf4362965e6ccd2b832af12b0ed6f2f669b15b42cb6f4361d36d99b88b7dc5a6",
		exports: [3]string{
			"596003579117f3edeeeeb84e602b1ff316fd6771ebeb9bd400fd5ae9155199ab",
			"d0a4a36284288e3bffe9da9b84bc99da99d7912011bc26c462504e2596229246",
			"419d16ff65523a00452d37ba2fd5f2b1a9261aeb30f1b1736cc2f3febb16c884",
		},
	}, {
		name:   "ChaCha20-Poly1305",
		aead:   chacha20Poly1305,
		ikmR:   "1a91ec4a112661d663caad07437e07486dcc80b499c83c6bf17fb2faba77c180404d983bd32ed4284fa1aee3bb3887b61402036b058c3c8d",
		skRm:   "c2f51845154d6bb6917e44ef0fa0a1fbf1d80f61d199486e75295e8a7e50432d548a7f8040953826c4f1bce79e433dedb4469391c3cc98a1",
		pkRm:   "f2fdb31a7829a6d2d78b9d8b670397457c92cb2417af37dbe0c1c12a9547e4eda9fde09fc3fe0f359bb7b4151e8a6fb592530af71d9dc0b5",
		ikmE:   "178e4db14a03ebf5b5205e11a3c3918431b4d4bb143b62a52bebdd61d107d23122868395cca3dbc46e98964d4c1dfdc4b0e05cbb2934d9e5",
		skEm:   "fa7562b37eef0c60126a0cac505c9a8854223794ee5c195f44ede823f9a74c41697c8927d056f8920ba7e021bde91b749751a1253a964aa6",
		enc:    "3d4f6aa08c635205bcd96a0791695d08638714474b4d2c0132b69e25cdb826e1a2a84bc0c40c4fc75f52051b034e0afa82b8457e28794f92",
		ct:     "4df124bd68d45b84dd5b82146597cdab8b56ab618166f814c2fe98ce35f43b09917283a58810aac71e852bff0a",
		shared: "cc20a83a9af44bc5a03a53f06beb01af474d5a85dd3c4f2082197ccdfe32a275996e497433e58460726459a1b40e31e6141e1fb605fb8ae0580b90bd7398f318",
		exports: [3]string{
			"d13d9f30a9de3369f25b8de6a733d9c5b68a79b148a662a44cb84e9296419ed6",
			"e584af331daaab516a39e2ba8a3421e428918e108c88dda9e921fc6ecb86fd5f",
			"f4b7df9f1f608657f97084d9847cab976e88083fd2d35f3636dcaa9a14ce62e5",
		},
	}} {
		t.Run(v.name, func(t *testing.T) {
			k := newX448KEM(v.aead).(*x448KEM)
			// DeriveKeyPair: the vectors keep the private key as
			// derived, unclamped, as we do.
			skR, pkR, err := k.deriveKeyPair(h(v.ikmR))
			if err != nil {
				t.Fatal(err)
			}
			if got := skR; !bytes.Equal(got, h(v.skRm)) {
				t.Errorf("DeriveKeyPair(ikmR) sk = %x, want %s", got, v.skRm)
			}
			if !bytes.Equal(pkR, h(v.pkRm)) {
				t.Errorf("DeriveKeyPair(ikmR) pk = %x, want %s", pkR, v.pkRm)
			}
			skE, pkE, _ := k.deriveKeyPair(h(v.ikmE))
			if got := skE; !bytes.Equal(got, h(v.skEm)) {
				t.Errorf("DeriveKeyPair(ikmE) sk = %x, want %s", got, v.skEm)
			}
			if !bytes.Equal(pkE, h(v.enc)) {
				t.Errorf("DeriveKeyPair(ikmE) pk = %x, want %s", pkE, v.enc)
			}
			shared, enc, err := k.encapWith(skE, h(v.pkRm))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, h(v.enc)) || !bytes.Equal(shared, h(v.shared)) {
				t.Errorf("Encap = %x, %x; want %s, %s", shared, enc, v.shared, v.enc)
			}
			if got, err := k.decap(h(v.skRm), enc); err != nil || !bytes.Equal(got, h(v.shared)) {
				t.Errorf("Decap = %x, %v; want %s", got, err, v.shared)
			}
			// The key schedule is the one every DHKEM suite here uses
			// (hpke_many.go), so these vectors check it for X25519 too.
			hs := &k.hs
			if ct, err := hs.sealFirst(bytes.Clone(shared), hs.infoHash(info), aad, pt); err != nil || !bytes.Equal(ct, h(v.ct)) {
				t.Errorf("SealBase = %x, %v; want %s", ct, err, v.ct)
			}
			for i, ctx := range []string{"", "00", "54657374436f6e74657874"} {
				if got := hs.export(bytes.Clone(shared), hs.infoHash(info), h(ctx), 32); !bytes.Equal(got, h(v.exports[i])) {
					t.Errorf("Export(%q) = %x, want %s", ctx, got, v.exports[i])
				}
				got, err := k.exportReceiver(skR, enc, info, h(ctx), 32)
				if err != nil || !bytes.Equal(got, h(v.exports[i])) {
					t.Errorf("receiver Export(%q) = %x, %v; want %s", ctx, got, err, v.exports[i])
				}
			}
			// Clamped or not, the private key decrypts (RFC 7748,
			// Section 5 clamps inside X448).
			for _, sk := range [][]byte{skR, clampX448(skR)} {
				got, err := k.open(sk, info, aad, h(v.enc), h(v.ct))
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("OpenBase = %x, %v", got, err)
				}
			}
		})
	}
}

func clampX448(k []byte) []byte {
	c := bytes.Clone(k)
	c[0] &= 252
	c[55] |= 128
	return c
}
