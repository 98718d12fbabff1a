package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mlskit/mlskit/storage"
)

// home keeps what a Client remembers besides MLS state: its identity (with
// the signature private key), its bookkeeping (meta: log cursors, inbox)
// and, for an X.509 identity, its trust settings. A state directory keeps
// them in files (identity.json, chat.json, trust.json); a Client made with
// InitStore or OpenStore keeps them as application records of its
// storage.Store, beside its groups.
type home interface {
	// read returns the named item's bytes, or an error wrapping
	// os.ErrNotExist when it was never written.
	read(ctx context.Context, item string) ([]byte, error)
	// write replaces the item atomically; it is readable by its owner only.
	write(ctx context.Context, item string, data []byte) error
	// where names an item in messages: a file's path, or the record's key.
	where(item string) string
	// String names the home in messages.
	String() string
}

// dirHome is a state directory.
type dirHome string

func (d dirHome) read(_ context.Context, item string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), item))
}

func (d dirHome) write(_ context.Context, item string, data []byte) error {
	return writeFileAtomic(filepath.Join(string(d), item), data, fileMode)
}

func (d dirHome) where(item string) string { return filepath.Join(string(d), item) }
func (d dirHome) String() string           { return string(d) }

// storeHome keeps the items as application records of a storage.Store
// (storage.Batch.AppRecords), under storeKeyPrefix.
type storeHome struct{ st storage.Store }

// storeKeyPrefix starts the keys of this package's application records, so
// that an application can keep its own records in the same store.
const storeKeyPrefix = "mlskit/client/"

func (h storeHome) read(ctx context.Context, item string) ([]byte, error) {
	data, err := h.st.AppRecord(ctx, []byte(storeKeyPrefix+item))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", h.where(item), os.ErrNotExist)
	}
	return data, err
}

func (h storeHome) write(ctx context.Context, item string, data []byte) error {
	return h.st.Write(ctx, &storage.Batch{AppRecords: []storage.Record{{Key: []byte(storeKeyPrefix + item), Value: data}}})
}

func (h storeHome) where(item string) string {
	return fmt.Sprintf("the store's record %q", storeKeyPrefix+item)
}
func (storeHome) String() string { return "the client's store" }

// loadJSON reads an item into v; found is false when it was never written.
func loadJSON(ctx context.Context, h home, item string, v any) (found bool, err error) {
	data, err := h.read(ctx, item)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", h.where(item), err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, &UserError{Msg: fmt.Sprintf("%s is damaged: %v", h.where(item), err), Err: ErrDamaged}
	}
	return true, nil
}

func saveJSON(ctx context.Context, h home, item string, v any, indent bool) error {
	var data []byte
	var err error
	if indent {
		data, err = json.MarshalIndent(v, "", "  ")
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	return h.write(ctx, item, data)
}
