// Command batch is the stand-in of the shop's batch image
// (zoe/python-batch:1.0) until a real Python image is built: it does not run
// the command it is given (its arguments) but writes what it would have run
// to zoe-batch-result.txt in the workspace ($ZOE_WORKSPACE, else the
// working directory), prints it, and exits with $EXIT_CODE (default 0).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	dir := os.Getenv("ZOE_WORKSPACE")
	if dir == "" {
		dir, _ = os.Getwd()
	}
	code := 0
	if s := os.Getenv("EXIT_CODE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 255 {
			fmt.Fprintf(os.Stderr, "EXIT_CODE %q is not a number from 0 to 255\n", s)
			os.Exit(2)
		}
		code = n
	}
	result := fmt.Sprintf("batch stand-in: this image runs no Python; it would have run %q with %s threads.\nfinished at %s, exit code %d\n",
		strings.Join(os.Args[1:], " "), orDefault(os.Getenv("JOB_THREADS"), "the default number of"),
		time.Now().UTC().Format(time.RFC3339), code)
	path := filepath.Join(dir, "zoe-batch-result.txt")
	if err := os.WriteFile(path, []byte(result), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write the result:", err)
		os.Exit(1)
	}
	fmt.Print(result)
	fmt.Println("wrote " + path)
	os.Exit(code)
}

func orDefault(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
