// Command job is a test image: it writes $CONTENT (default "done") to $OUTPUT,
// or to $ZOE_WORKSPACE/job-output.txt, or nowhere when neither is set, and
// exits with the code in $EXIT_CODE (default 0). With $LONG_LINE set to n,
// it first writes a line of n 'x' to standard output, in writes of 64 KiB.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	if n, _ := strconv.Atoi(os.Getenv("LONG_LINE")); n > 0 {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for ; n > 0; n -= len(chunk) {
			os.Stdout.Write(chunk[:min(n, len(chunk))])
		}
		os.Stdout.Write([]byte("\n"))
	}
	path := os.Getenv("OUTPUT")
	if ws := os.Getenv("ZOE_WORKSPACE"); path == "" && ws != "" {
		path = filepath.Join(ws, "job-output.txt")
	}
	content := os.Getenv("CONTENT")
	if content == "" {
		content = "done"
	}
	if path != "" {
		if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(1)
		}
		fmt.Println("wrote " + path)
	}
	code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
	fmt.Printf("exiting with %d\n", code)
	os.Exit(code)
}
