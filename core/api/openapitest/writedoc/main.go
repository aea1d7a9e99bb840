// Command writedoc writes the OpenAPI document the daemon serves, as
// version "dev", to openapi.json (indented): the input of oapi-codegen.
// The test of package openapitest checks a real daemon serves this very
// document.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/api"
)

// Version is the info.version of the kept document: the test daemon's.
const Version = "dev"

func main() {
	if err := run("openapi.json"); err != nil {
		fmt.Fprintln(os.Stderr, "writedoc:", err)
		os.Exit(1)
	}
}

func run(file string) error {
	compact, err := json.Marshal(api.New(nil, api.Config{Info: client.Info{Version: Version}}).OpenAPI())
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	return os.WriteFile(file, out.Bytes(), 0o644)
}
