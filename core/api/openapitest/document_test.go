package openapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// servedDocument is GET /openapi.json, indented as the kept copy is.
func servedDocument(t *testing.T, base string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %v", resp.StatusCode, err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(body), "", "  "); err != nil {
		t.Fatalf("GET /openapi.json: not JSON: %v", err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// checkKeptDocument fails when openapi.json is not what the daemon serves.
func checkKeptDocument(t *testing.T, served []byte) {
	t.Helper()
	kept, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kept, served) {
		t.Errorf("openapi.json is not the document the daemon serves (run go generate ./core/api/openapitest): %s", firstDifference(kept, served))
	}
}

// firstDifference is the first line where kept and served differ.
func firstDifference(kept, served []byte) string {
	k, s := bytes.Split(kept, []byte("\n")), bytes.Split(served, []byte("\n"))
	for i := range min(len(k), len(s)) {
		if !bytes.Equal(k[i], s[i]) {
			return fmt.Sprintf("line %d: kept %q, served %q", i+1, k[i], s[i])
		}
	}
	return fmt.Sprintf("kept %d lines, served %d", len(k), len(s))
}

// TestClientGenerated: the kept client is what oapi-codegen makes of the
// kept document, so that neither changes without the other.
func TestClientGenerated(t *testing.T) {
	out := filepath.Join(t.TempDir(), "client.gen.go")
	cmd := exec.Command("go", "tool", "oapi-codegen", "-generate", "types,client", "-package", "openapitest", "-o", out, "openapi.json")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, msg)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, kept) {
		t.Errorf("client.gen.go is not what oapi-codegen makes of openapi.json: run go generate ./core/api/openapitest")
	}
}
