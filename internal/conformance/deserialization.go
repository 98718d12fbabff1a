package conformance

import (
	"encoding/json"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
)

func init() { register("deserialization.json", checkDeserialization) }

// checkDeserialization: each vlbytes_header must decode as a varint to length,
// and encoding length must give the same header (RFC 9420, Section 2.1.2).
func checkDeserialization(data []byte) ([]Case, error) {
	var tcs []struct {
		Header Hex `json:"vlbytes_header"`
		Length Num `json:"length"`
	}
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i, tc := range tcs {
		c := Case{Name: caseName(i, 0)}
		var v uint32
		r := codec.NewReader(tc.Header)
		switch {
		case !r.ReadVarint(&v) || !r.Empty():
			c.Err = fmt.Errorf("header %x does not decode", []byte(tc.Header))
		case uint64(v) != uint64(tc.Length):
			c.Err = fmt.Errorf("header %x decodes to %d, want %d", []byte(tc.Header), v, tc.Length)
		default:
			b := codec.NewBuilder(nil)
			b.AddVarint(uint64(tc.Length))
			enc, err := b.Bytes()
			if err != nil || string(enc) != string(tc.Header) {
				c.Err = mismatch("encoding", enc, tc.Header)
			}
		}
		out = append(out, c)
	}
	return out, nil
}
