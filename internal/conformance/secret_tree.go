package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
)

func init() { register("secret-tree.json", checkSecretTree) }

type secretTreeGeneration struct {
	Generation       uint32 `json:"generation"`
	HandshakeKey     Hex    `json:"handshake_key"`
	HandshakeNonce   Hex    `json:"handshake_nonce"`
	ApplicationKey   Hex    `json:"application_key"`
	ApplicationNonce Hex    `json:"application_nonce"`
}

type secretTreeCase struct {
	CipherSuite uint16 `json:"cipher_suite"`
	SenderData  struct {
		SenderDataSecret Hex `json:"sender_data_secret"`
		Ciphertext       Hex `json:"ciphertext"`
		Key              Hex `json:"key"`
		Nonce            Hex `json:"nonce"`
	} `json:"sender_data"`
	EncryptionSecret Hex                      `json:"encryption_secret"`
	Leaves           [][]secretTreeGeneration `json:"leaves"`
}

// checkSecretTree checks the sender-data key and nonce (RFC 9420, Section
// 6.3.2) and every listed generation of every leaf's two ratchets (Section
// 9), both as a receiver (Get, jumping to each listed generation) and as a
// sender (Next, stepping through every generation).
func checkSecretTree(data []byte) ([]Case, error) {
	var tcs []secretTreeCase
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i, tc := range tcs {
		out = append(out, Case{Name: caseName(i, tc.CipherSuite), Err: secretTreeCaseErr(&tc)})
	}
	return out, nil
}

func secretTreeCaseErr(tc *secretTreeCase) error {
	s, err := suite.Lookup(suite.ID(tc.CipherSuite))
	if err != nil {
		return err
	}
	sd := tc.SenderData
	key, nonce := keyschedule.SenderDataKeyNonce(s, keyschedule.Secret(sd.SenderDataSecret), sd.Ciphertext)
	if !bytes.Equal(key, sd.Key) {
		return mismatch("sender_data key", key, sd.Key)
	}
	if !bytes.Equal(nonce, sd.Nonce) {
		return mismatch("sender_data nonce", nonce, sd.Nonce)
	}
	if len(tc.Leaves) == 0 {
		return fmt.Errorf("no leaves")
	}

	n := uint32(len(tc.Leaves))
	// Receiver: jump straight to each listed generation. Allow any jump the
	// vectors make.
	cfg := secrettree.Config{MaxForwardDistance: 1 << 20}
	recv, err := secrettree.New(s, keyschedule.Secret(tc.EncryptionSecret), n, cfg)
	if err != nil {
		return err
	}
	// Sender: step through every generation up to the last listed one.
	send, err := secrettree.New(s, keyschedule.Secret(tc.EncryptionSecret), n, cfg)
	if err != nil {
		return err
	}
	for i, gens := range tc.Leaves {
		leaf := treemath.LeafIndex(i)
		for _, k := range []secrettree.Kind{secrettree.Handshake, secrettree.Application} {
			for _, g := range gens {
				wantKey, wantNonce := g.HandshakeKey, g.HandshakeNonce
				if k == secrettree.Application {
					wantKey, wantNonce = g.ApplicationKey, g.ApplicationNonce
				}
				what := fmt.Sprintf("leaf %d %v generation %d", i, k, g.Generation)

				key, nonce, err := recv.Get(leaf, k, g.Generation)
				if err != nil {
					return fmt.Errorf("%s: Get: %w", what, err)
				}
				if !bytes.Equal(key, wantKey) {
					return mismatch(what+" key (Get)", key, wantKey)
				}
				if !bytes.Equal(nonce, wantNonce) {
					return mismatch(what+" nonce (Get)", nonce, wantNonce)
				}

				var gen uint32
				for {
					gen, key, nonce, err = send.Next(leaf, k)
					if err != nil {
						return fmt.Errorf("%s: Next: %w", what, err)
					}
					if gen >= g.Generation {
						break
					}
				}
				if gen != g.Generation {
					return fmt.Errorf("%s: Next skipped to generation %d", what, gen)
				}
				if !bytes.Equal(key, wantKey) {
					return mismatch(what+" key (Next)", key, wantKey)
				}
				if !bytes.Equal(nonce, wantNonce) {
					return mismatch(what+" nonce (Next)", nonce, wantNonce)
				}
			}
		}
	}
	return nil
}
