package storage

import "fmt"

// Validate checks the rules documented on Batch. Engines call it before
// touching anything, so every engine rejects the same batches.
func (b *Batch) Validate() error {
	if b == nil {
		return fmt.Errorf("%w: nil batch", ErrInvalidBatch)
	}
	if b.GroupScoped() && len(b.GroupID) == 0 {
		return fmt.Errorf("%w: group-scoped change without GroupID", ErrInvalidBatch)
	}
	if b.State != nil && len(b.State) == 0 {
		return fmt.Errorf("%w: empty state", ErrInvalidBatch)
	}
	if b.PendingCommit != nil {
		if len(b.PendingCommit) == 0 {
			return fmt.Errorf("%w: empty pending commit", ErrInvalidBatch)
		}
		if b.ClearPendingCommit {
			return fmt.Errorf("%w: pending commit both set and cleared", ErrInvalidBatch)
		}
	}

	epochs := make(map[uint64]bool, len(b.Epochs)+len(b.DeleteEpochs))
	for _, e := range b.Epochs {
		if len(e.Data) == 0 {
			return fmt.Errorf("%w: empty record for epoch %d", ErrInvalidBatch, e.Epoch)
		}
		if epochs[e.Epoch] {
			return fmt.Errorf("%w: epoch %d named twice", ErrInvalidBatch, e.Epoch)
		}
		epochs[e.Epoch] = true
	}
	for _, e := range b.DeleteEpochs {
		if epochs[e] {
			return fmt.Errorf("%w: epoch %d named twice", ErrInvalidBatch, e)
		}
		epochs[e] = true
	}

	keys := make(map[string]bool, len(b.MessageKeys)+len(b.DeleteMessageKeys))
	mkName := func(id MessageKeyID) (string, error) {
		if len(id.ID) == 0 {
			return "", fmt.Errorf("%w: empty message key ID", ErrInvalidBatch)
		}
		// The epoch is a fixed-width prefix, so distinct IDs give distinct names.
		var k [8]byte
		for i := range k {
			k[i] = byte(id.Epoch >> (56 - 8*i))
		}
		n := string(k[:]) + string(id.ID)
		if keys[n] {
			return "", fmt.Errorf("%w: message key named twice in epoch %d", ErrInvalidBatch, id.Epoch)
		}
		keys[n] = true
		return n, nil
	}
	for _, k := range b.MessageKeys {
		if len(k.Data) == 0 {
			return fmt.Errorf("%w: empty message key record", ErrInvalidBatch)
		}
		if _, err := mkName(k.MessageKeyID); err != nil {
			return err
		}
	}
	for _, k := range b.DeleteMessageKeys {
		if _, err := mkName(k); err != nil {
			return err
		}
	}

	if err := checkRecords("KeyPackage", b.KeyPackages, b.DeleteKeyPackages); err != nil {
		return err
	}
	if err := checkRecords("PSK", b.PSKs, b.DeletePSKs); err != nil {
		return err
	}
	return checkRecords("application", b.AppRecords, b.DeleteAppRecords)
}

func checkRecords(what string, puts []Record, dels [][]byte) error {
	seen := make(map[string]bool, len(puts)+len(dels))
	for i, r := range puts {
		if len(r.Key) == 0 || len(r.Value) == 0 {
			return fmt.Errorf("%w: %s record %d has an empty key or value", ErrInvalidBatch, what, i)
		}
		if seen[string(r.Key)] {
			return fmt.Errorf("%w: %s record %d named twice", ErrInvalidBatch, what, i)
		}
		seen[string(r.Key)] = true
	}
	for i, k := range dels {
		if len(k) == 0 {
			return fmt.Errorf("%w: %s delete %d has an empty key", ErrInvalidBatch, what, i)
		}
		if seen[string(k)] {
			return fmt.Errorf("%w: %s delete %d names a record already named", ErrInvalidBatch, what, i)
		}
		seen[string(k)] = true
	}
	return nil
}

// GroupScoped reports whether the batch changes anything scoped to GroupID.
func (b *Batch) GroupScoped() bool {
	return b.State != nil || len(b.Epochs) > 0 || len(b.DeleteEpochs) > 0 ||
		len(b.MessageKeys) > 0 || len(b.DeleteMessageKeys) > 0 ||
		b.PendingCommit != nil || b.ClearPendingCommit
}
