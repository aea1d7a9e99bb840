// Package testimages builds the images the Docker back-end's tests and the
// examples run, without a registry: small static Go programs (the
// sub-directories of this package, and the SDK's conformance probe), each
// copied into an image FROM scratch as /prog, its entrypoint, and tagged
// zoe-test/<name>:1 in the local engine. (The example shop runs the
// analytics images of images/, which make images builds.)
package testimages

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// The test images.
const (
	// HTTPService serves "hello from <hostname>" on $PORT (default 8080),
	// prints "listening on :<port>", a "tick N" line every $TICK when set,
	// and exits 0 on SIGTERM.
	HTTPService = "zoe-test/httpservice:1"
	// Job writes a file to $OUTPUT or $ZOE_WORKSPACE/job-output.txt and
	// exits with $EXIT_CODE.
	Job = "zoe-test/job:1"
	// Worker asks http://$MASTER/ and prints "answer: <page>" (retrying for
	// $GIVE_UP, default 30s); with $HOLD set it then stays up until SIGTERM.
	Worker = "zoe-test/worker:1"
	// OOM allocates memory until it is killed.
	OOM = "zoe-test/oom:1"
	// Probe is the probe of the back-end conformance suite
	// (plugintest.BackendSuite.ProbeImage), built from the SDK's
	// github.com/zoe-project/zoe/sdk/plugintest/probe, which documents its
	// output.
	Probe = "zoe-test/probe:1"
	// Pause waits for SIGTERM and exits 0: the sandbox image of the pods of
	// the tests' real Kubernetes node (internal/testutil.AddRealNode).
	Pause = "zoe-test/pause:1"
)

// labelSum is the label holding the sha256 of an image's program: an image
// whose label matches the freshly built program is not built again.
const labelSum = "zoe.testimage.sum"

// programs are the images' Go packages, built from this package's
// directory: the root module, which reaches the SDK through its replace;
// env is the image's environment (NAME=value).
var programs = []struct {
	pkg, image string
	env        []string
}{
	{"./httpservice", HTTPService, nil},
	{"./job", Job, nil},
	{"./worker", Worker, nil},
	{"./oom", OOM, nil},
	{"github.com/zoe-project/zoe/sdk/plugintest/probe", Probe, nil},
	{"./pause", Pause, nil},
}

// Images lists every test image.
func Images() []string {
	out := make([]string, len(programs))
	for i, p := range programs {
		out[i] = p.image
	}
	return out
}

// Build compiles every program (CGO_ENABLED=0, for the engine's
// architecture) and builds its image in the engine, unless an image with the
// same program is already there.
func Build(ctx context.Context, cli *client.Client) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("testimages: %w", err)
	}
	// The sources are found by the go command, from the caller's directory
	// in the module: compiled with -trimpath (as make test does), this
	// package does not know its own file's path.
	out, err := exec.CommandContext(ctx, goBin, "list", "-f", "{{.Dir}}", "github.com/zoe-project/zoe/internal/testimages").Output()
	if err != nil {
		return fmt.Errorf("testimages: finding the programs' sources (go list, run inside the zoe module): %w", err)
	}
	src := strings.TrimSpace(string(out))
	unlock, err := lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tmp, err := os.MkdirTemp("", "zoe-testimages-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("testimages: the Docker engine does not answer: %w", err)
	}
	goarch := map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[info.Info.Architecture]
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	built := map[string]string{} // package -> binary: one build serves several images
	for i, p := range programs {
		bin, ok := built[p.pkg]
		if !ok {
			bin = filepath.Join(tmp, fmt.Sprintf("prog%d", i))
			// go run keeps what it links in the build cache, go build -o
			// links again every time: with -exec cp it copies the binary
			// to bin instead of running it (as internal/testutil.Build).
			cmd := exec.CommandContext(ctx, goBin, "run", "-trimpath", "-exec", "cp", p.pkg, bin)
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("testimages: build %s: %v\n%s", p.pkg, err, out)
			}
			built[p.pkg] = bin
		}
		if err := buildImage(ctx, cli, bin, p.image, p.env); err != nil {
			return fmt.Errorf("testimages: image %s: %w", p.image, err)
		}
	}
	return nil
}

// lock holds a file lock shared by every process of the machine: go test -p
// runs several packages that build the images at once, and on a new
// machine each compiled every program and built every image beside the
// others (one of them ran out of its 3 minutes). Holding it in turn, the
// first builds and the others find the images there.
func lock(ctx context.Context) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "zoe-testimages.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("testimages: lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// Closing the file releases the lock.
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("testimages: lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("testimages: waiting for another process building the images: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func buildImage(ctx context.Context, cli *client.Client, bin, tag string, env []string) error {
	prog, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	dockerfile := "FROM scratch\nCOPY prog /prog\n"
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		dockerfile += "ENV " + name + "=" + strconv.Quote(value) + "\n"
	}
	dockerfile += "ENTRYPOINT [\"/prog\"]\n"
	// The sum covers the Dockerfile too: a changed environment rebuilds.
	h := sha256.New()
	h.Write(prog)
	h.Write([]byte(dockerfile))
	sum := hex.EncodeToString(h.Sum(nil))
	if img, err := cli.ImageInspect(ctx, tag); err == nil && img.Config != nil && img.Config.Labels[labelSum] == sum {
		return nil
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"prog", 0o755, prog}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	res, err := cli.ImageBuild(ctx, &ctxTar, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Labels: map[string]string{labelSum: sum},
	})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("reading the build's output: %w", err)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		return fmt.Errorf("not there after its build: %w", err)
	}
	return nil
}
