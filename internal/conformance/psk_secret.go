package conformance

import (
	"bytes"
	"encoding/json"

	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func init() { register("psk_secret.json", checkPSKSecret) }

// checkPSKSecret chains each case's external PSKs into psk_secret
// (RFC 9420, Section 8.4).
func checkPSKSecret(data []byte) ([]Case, error) {
	var tcs []struct {
		CipherSuite uint16 `json:"cipher_suite"`
		PSKs        []struct {
			PSKID    Hex `json:"psk_id"`
			PSK      Hex `json:"psk"`
			PSKNonce Hex `json:"psk_nonce"`
		} `json:"psks"`
		PSKSecret Hex `json:"psk_secret"`
	}
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i, tc := range tcs {
		c := Case{Name: caseName(i, tc.CipherSuite)}
		out = append(out, c)
		s, err := suite.Lookup(suite.ID(tc.CipherSuite))
		if err != nil {
			out[len(out)-1].Err = err
			continue
		}
		psks := make([]keyschedule.PSK, len(tc.PSKs))
		for j, p := range tc.PSKs {
			psks[j] = keyschedule.PSK{
				ID: wire.PreSharedKeyID{
					PSKType:  wire.PSKTypeExternal,
					PSKID:    p.PSKID,
					PSKNonce: p.PSKNonce,
				},
				Value: keyschedule.Secret(p.PSK),
			}
		}
		got, err := keyschedule.PSKSecret(s, psks)
		switch {
		case err != nil:
			out[len(out)-1].Err = err
		case !bytes.Equal(got, tc.PSKSecret):
			out[len(out)-1].Err = mismatch("psk_secret", got, tc.PSKSecret)
		}
	}
	return out, nil
}
