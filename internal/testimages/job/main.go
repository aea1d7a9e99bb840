// Command job is a test image: it writes $CONTENT (default "done") to $OUTPUT,
// or to $ZOE_WORKSPACE/job-output.txt, or nowhere when neither is set, and
// exits with the code in $EXIT_CODE (default 0).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
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
