package testutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// The analytics images of images/ (make images), by name without their
// tag: the example shop runs them.
var analyticsImages = []string{"zoe/python", "zoe/dask-scheduler", "zoe/dask-worker", "zoe/notebook-dask"}

// AnalyticsImages are the references of the analytics images at the tag
// images/VERSION gives (bookworm-<VERSION>).
func AnalyticsImages() ([]string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "images", "VERSION"))
	if err != nil {
		return nil, fmt.Errorf("the analytics images' version: %w", err)
	}
	tag := "bookworm-" + strings.TrimSpace(string(b))
	refs := make([]string, len(analyticsImages))
	for i, name := range analyticsImages {
		refs[i] = name + ":" + tag
	}
	return refs, nil
}

// RequireAnalyticsImages returns the analytics images' references when
// the engine cli talks to has them all; otherwise it skips t (fails it
// under CI=true, where make test builds them first), saying how to build
// them.
func RequireAnalyticsImages(t testing.TB, cli *client.Client) []string {
	t.Helper()
	refs, err := AnalyticsImages()
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, ref := range refs {
		if _, err := cli.ImageInspect(context.Background(), ref); err != nil {
			missing = append(missing, ref)
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("the analytics images %s are not in the Docker engine: run make images (make test does)", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI)")
		}
		t.Skip(msg)
	}
	return refs
}

// CopyImages makes the images refs of the engine from be in the engine to
// under the same names and ids: those to lacks, or holds other images
// under, are saved from one and loaded into the other, in one archive
// (the layers they share travel once). The analytics images are 0.1 to
// 0.7 GB: a test engine whose data root is kept loads them once.
func CopyImages(ctx context.Context, from, to *client.Client, refs []string) error {
	var stale []string
	for _, ref := range refs {
		src, err := from.ImageInspect(ctx, ref)
		if err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		dst, err := to.ImageInspect(ctx, ref)
		if err != nil || dst.ID != src.ID {
			stale = append(stale, ref)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	saved, err := from.ImageSave(ctx, stale)
	if err != nil {
		return fmt.Errorf("saving %s: %w", strings.Join(stale, ", "), err)
	}
	defer saved.Close()
	loaded, err := to.ImageLoad(ctx, saved, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("loading %s: %w", strings.Join(stale, ", "), err)
	}
	out, err := io.ReadAll(loaded)
	loaded.Close()
	if err != nil {
		return fmt.Errorf("loading %s: %w", strings.Join(stale, ", "), err)
	}
	// The engine reports a failed load in the stream, not as an error.
	if strings.Contains(string(out), `"errorDetail"`) {
		return errors.New("loading " + strings.Join(stale, ", ") + ": " + string(out))
	}
	return nil
}
