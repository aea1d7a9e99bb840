package main

// The credentials zoe login stores: one server's address and token in
// <user config dir>/zoe/credentials.json, readable by its owner only.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

type credentials struct {
	Addr      string     `json:"addr"`
	Username  string     `json:"username"`
	Token     string     `json:"token"`
	TokenID   int64      `json:"token_id,omitempty"`
	TokenName string     `json:"token_name,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (c *credentials) expired() bool {
	return c.ExpiresAt != nil && time.Now().After(*c.ExpiresAt)
}

// credentialsPath is $XDG_CONFIG_HOME/zoe/credentials.json (or the
// platform's equivalent).
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory for the credentials: %w", err)
	}
	return filepath.Join(dir, "zoe", "credentials.json"), nil
}

// loadCredentials reads the stored credentials; nil when there are none.
// A file others may read is refused: it holds a secret.
func loadCredentials() (*credentials, string, error) {
	path, err := credentialsPath()
	if err != nil {
		// No home: nothing can be stored, so nothing is.
		return nil, "", nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("read the stored credentials: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, path, fmt.Errorf("read the stored credentials: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, path, fmt.Errorf("the credentials file %s may be read by others (mode %04o): chmod 600 it, or zoe logout and zoe login again", path, fi.Mode().Perm())
	}
	var c credentials
	if err := json.NewDecoder(f).Decode(&c); err != nil {
		return nil, path, fmt.Errorf("the credentials file %s is broken (%v): zoe logout and zoe login again", path, err)
	}
	if c.Token == "" {
		return nil, path, nil
	}
	return &c, path, nil
}

// saveCredentials writes c with mode 0600 in a directory of mode 0700,
// replacing the file atomically.
func saveCredentials(c *credentials) (string, error) {
	path, err := credentialsPath()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("store the credentials: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("store the credentials: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*.json")
	if err != nil {
		return "", fmt.Errorf("store the credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; say it, whatever the umask.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("store the credentials: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if serr := tmp.Sync(); err == nil {
		err = serr
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("store the credentials: %w", err)
	}
	return path, nil
}

// removeCredentials deletes the stored credentials; false when there were
// none.
func removeCredentials() (bool, error) {
	path, err := credentialsPath()
	if err != nil {
		return false, nil
	}
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete the stored credentials: %w", err)
	}
	return true, nil
}
