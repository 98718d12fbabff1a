package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The state directory holds the signature private key, group secrets and
// KeyPackage private keys (state.db), and decrypted messages (chat.json):
// it is 0700 and every file in it 0600, whatever the umask.
const (
	dirMode  os.FileMode = 0o700
	fileMode os.FileMode = 0o600
)

// tmpPrefix names the temporary files of writeFileAtomic; one left behind
// by a crash may hold plaintext, so Open removes them.
const tmpPrefix = ".tmp-"

// makePrivateDir creates dir (and parents) and makes dir itself 0700.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("creating the state directory: %w", err)
	}
	return tightenDir(dir)
}

// tightenDir makes an existing state directory and its files private again,
// for directories made by older builds under a permissive umask.
func tightenDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("the state directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, dirMode); err != nil {
			return fmt.Errorf("making %s private: %w", dir, err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading the state directory: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if fi, err := e.Info(); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fileMode); err != nil {
				return fmt.Errorf("making %s private: %w", p, err)
			}
		}
	}
	return nil
}

// removeTemp deletes temporary files a killed process left behind. It runs
// with the directory lock held, so none of them is being written.
func removeTemp(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading the state directory: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing a leftover temporary file: %w", err)
			}
		}
	}
	return nil
}

// precreate makes an empty file with fileMode if none exists, so that a
// library creating it later (SQLite, whose -wal and -shm files copy the
// database file's mode) never makes it world-readable.
func precreate(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, fileMode)
	if err != nil {
		return err
	}
	return f.Close()
}

// ErrDamaged: a file of the state directory is unreadable or inconsistent
// with the others. The message names the file.
var ErrDamaged = errors.New("state directory damaged")

// checkConsistent notices a chat.json that is missing while state.db still
// holds groups: they would otherwise be forgotten without a word. (A
// chat.json that lacks one group is what a crash in the middle of a join
// leaves; joinFromLog adopts that group.)
func (c *Client) checkConsistent(ctx context.Context) error {
	ids, err := c.store.ListGroups(ctx)
	if err != nil {
		return &UserError{Msg: fmt.Sprintf("%s is damaged or unreadable: %v", c.stateWhere(), err), Err: ErrDamaged}
	}
	if c.meta.existed {
		return nil
	}
	var lost []string
	for _, id := range ids {
		if c.meta.group(id) == nil {
			lost = append(lost, fmt.Sprintf("%q", id))
		}
	}
	if len(lost) > 0 {
		return &UserError{Msg: fmt.Sprintf("%s does not list the groups %s that %s holds (was it deleted or replaced?): restore it from a backup, or move the directory aside and start a new one",
			c.home.where(metaFile), strings.Join(lost, ", "), c.stateWhere()), Err: ErrDamaged}
	}
	return nil
}
