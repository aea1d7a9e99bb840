// Package shop reads a ZApp shop directory: one sub-directory per group of
// ZApps, each with a manifest.json (version 1, the original Zoe's) listing
// its entries — a ZApp description, a Markdown description, a logo, labels,
// role visibility and the parameters a user may set.
//
// Every mistake is reported as a Problem with its file and JSON path, and
// hides only the entry it is in (or the manifest, when the manifest itself
// cannot be read): the rest of the shop stays available. The directory is
// re-read when it changes.
//
// Both generations of the original's manifests are read. A manifest is of
// the earlier generation when any of its entries has the key guest_access;
// in such a manifest an entry without enabled_for and disabled_for is
// hidden from the role "guest" unless its guest_access is true, which is
// what the earlier original did (the later one ignored the key). A manifest
// where no entry has guest_access reads as the later generation.
package shop

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/zapp"
)

// ManifestFile is the file that makes a sub-directory a part of the shop.
const ManifestFile = "manifest.json"

// ManifestVersion is the only manifest version read; others are skipped.
const ManifestVersion = 1

// AdminRole sees every entry, whatever enabled_for and disabled_for say.
const AdminRole = "admin"

// AllRoles in enabled_for makes an entry visible to every role.
const AllRoles = "all"

// DefaultLogo is the logo file of an entry that names none.
const DefaultLogo = "logo.png"

// DefaultCheckInterval is how often, at most, the directory is checked for
// changes.
const DefaultCheckInterval = time.Second

// maxFileSize bounds the manifest, ZApp and Markdown files read.
const maxFileSize = 4 << 20

// maxDepth bounds how deep below an entry directory changes are looked for:
// files are named relative to it and rarely nested, and a data tree left
// there must not make every check slow.
const maxDepth = 4

// Shop is a ZApp shop directory, re-read when it changes. It is safe for
// concurrent use.
type Shop struct {
	dir      string
	limits   zapp.Limits
	log      hclog.Logger
	interval time.Duration

	mu      sync.Mutex // guards the fields below; held while re-reading
	checked time.Time
	print   [sha256.Size]byte
	snap    *snapshot
}

// snapshot is one reading of the directory; never changed once built.
type snapshot struct {
	entries  []*Entry // by category, directory, index
	byID     map[string]*Entry
	problems []Problem
}

// Option changes how Load sets up a Shop.
type Option func(*Shop)

// WithCheckInterval sets how often, at most, an access checks the directory
// for changes; 0 checks on every access.
func WithCheckInterval(d time.Duration) Option {
	return func(s *Shop) { s.interval = d }
}

// Load reads the shop directory dir; the limits bound the resources of the
// ZApps' services. Mistakes in the directory are Problems, not errors: the
// error is only for a dir that is not a readable directory.
func Load(dir string, l zapp.Limits, log hclog.Logger, opts ...Option) (*Shop, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("shop directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("shop directory %s is not a directory", dir)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return nil, fmt.Errorf("shop directory: %w", err)
	}
	s := &Shop{dir: dir, limits: l, log: log, interval: DefaultCheckInterval}
	for _, o := range opts {
		o(s)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checked = time.Now()
	s.reload(fingerprint(dir))
	return s, nil
}

// Dir is the shop directory as given to Load.
func (s *Shop) Dir() string { return s.dir }

// current returns the latest reading, re-reading the directory first when
// it changed since the last check.
func (s *Shop) current() *snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Sub(s.checked) >= s.interval {
		s.checked = now
		// The fingerprint is taken before reading, so that a change made
		// during the reading is seen at the next check.
		if fp := fingerprint(s.dir); fp != s.print {
			s.log.Info("shop directory changed, reading it again", "dir", s.dir)
			s.reload(fp)
		}
	}
	return s.snap
}

func (s *Shop) reload(fp [sha256.Size]byte) {
	s.print = fp
	s.snap = scan(s.dir, s.limits)
	for _, p := range s.snap.problems {
		s.log.Warn("shop problem", "severity", p.Severity, "file", p.File, "path", p.Path, "message", p.Message)
	}
	s.log.Info("shop read", "dir", s.dir, "entries", len(s.snap.entries), "problems", len(s.snap.problems))
}

// Entries returns the entries the role may see, ordered by category: every
// entry for AdminRole.
func (s *Shop) Entries(role string) []*Entry {
	var out []*Entry
	for _, e := range s.current().entries {
		if e.VisibleTo(role) {
			out = append(out, e)
		}
	}
	return out
}

// Entry returns the entry with the id if the role may see it.
func (s *Shop) Entry(id, role string) (*Entry, bool) {
	e, ok := s.current().byID[id]
	if !ok || !e.VisibleTo(role) {
		return nil, false
	}
	return e, true
}

// Problems returns every problem of the latest reading, by file.
func (s *Shop) Problems() []Problem {
	return slices.Clone(s.current().problems)
}

// Entry is one ZApp offered by the shop. It is never changed once loaded:
// treat its fields as read-only.
type Entry struct {
	// ID is <directory>-<index in the manifest>, as in the original.
	ID string
	// Dir is the entry's sub-directory of the shop, Index its position in
	// the manifest's zapps.
	Dir   string
	Index int

	Category string
	Name     string
	// ZAppFile is the ZApp description's file name (manifest key
	// description), DescriptionFile the Markdown file's (readable_descr).
	ZAppFile        string
	DescriptionFile string
	// DescriptionHTML is the Markdown description rendered to sanitized HTML.
	DescriptionHTML string
	// Logo is the logo's file name; "" when the entry has none.
	Logo string
	// Labels were appended to every service's labels.
	Labels []string
	// EnabledFor and DisabledFor are role names; see VisibleTo.
	EnabledFor  []string
	DisabledFor []string
	Parameters  []Parameter
	// Legacy tells that the manifest is of the earlier generation (see the
	// package documentation).
	Legacy bool

	app      *zapp.App
	limits   zapp.Limits
	logoPath string
}

// App returns a copy of the entry's validated ZApp description, manifest
// labels included, as it runs without parameters.
func (e *Entry) App() *zapp.App { return e.app.Clone() }

// LogoPath is the absolute path of the logo file, inside the shop
// directory; "" when the entry has no logo.
func (e *Entry) LogoPath() string { return e.logoPath }

// VisibleTo tells whether the role may see the entry: AdminRole sees all;
// another role not when disabled_for names it, nor when enabled_for names
// neither it nor AllRoles. Role names this site does not define are fine.
func (e *Entry) VisibleTo(role string) bool {
	if role == AdminRole {
		return true
	}
	if slices.Contains(e.DisabledFor, role) {
		return false
	}
	return slices.Contains(e.EnabledFor, role) || slices.Contains(e.EnabledFor, AllRoles)
}

// scan reads the whole shop directory.
func scan(dir string, l zapp.Limits) *snapshot {
	snap := &snapshot{byID: map[string]*Entry{}}
	var ps problems
	defer func() {
		sortProblems(ps)
		snap.problems = ps
	}()
	abs, err := filepath.Abs(dir)
	if err != nil {
		ps.errorf(dir, "", "cannot read the shop directory: %v", err)
		return snap
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		ps.errorf(dir, "", "cannot read the shop directory: %v", err)
		return snap
	}
	defer root.Close()
	des, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		ps.errorf(dir, "", "cannot read the shop directory: %v", err)
		return snap
	}
	sc := &scanner{dir: dir, abs: abs, root: root, limits: l, md: newRenderer(), ps: &ps, apps: map[string]*zapp.App{}}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") {
			continue // .git and the like
		}
		// root.Stat follows links that stay inside the shop, refuses others.
		fi, err := root.Stat(name)
		if err != nil {
			if hasManifest(filepath.Join(dir, name)) {
				ps.errorf(filepath.Join(dir, name), "", "skipped: it links outside the shop directory (%v)", bare(err))
			}
			continue
		}
		if !fi.IsDir() {
			continue
		}
		if _, err := root.Lstat(filepath.Join(name, ManifestFile)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		for _, e := range sc.manifest(name) {
			snap.entries = append(snap.entries, e)
			snap.byID[e.ID] = e
		}
	}
	slices.SortStableFunc(snap.entries, func(a, b *Entry) int {
		return cmp.Or(cmp.Compare(a.Category, b.Category), cmp.Compare(a.Dir, b.Dir), cmp.Compare(a.Index, b.Index))
	})
	return snap
}

func hasManifest(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ManifestFile))
	return err == nil
}

// scanner holds what reading the manifests of one scan needs.
type scanner struct {
	dir    string // as given to Load, to name files in problems
	abs    string
	root   *os.Root
	limits zapp.Limits
	md     *renderer
	ps     *problems
	// apps caches the ZApp files read, by file; nil for a file that failed.
	apps map[string]*zapp.App
}

// file names a file of the shop in problems.
func (sc *scanner) file(sub, name string) string { return filepath.Join(sc.dir, sub, name) }

// read reads a regular file of the shop, refusing names that leave the
// entry directory and links that leave the shop.
func (sc *scanner) read(sub, name string) ([]byte, error) {
	if !filepath.IsLocal(name) {
		return nil, fmt.Errorf("%q is not a file name inside the directory %s", name, sub)
	}
	rel := filepath.Join(sub, name)
	fi, err := sc.root.Stat(rel)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", bare(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	f, err := sc.root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", bare(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return data, nil
}

// manifest reads the manifest of the sub-directory sub and its entries.
func (sc *scanner) manifest(sub string) []*Entry {
	mfile := sc.file(sub, ManifestFile)
	data, err := sc.read(sub, ManifestFile)
	if err != nil {
		sc.ps.errorf(mfile, "", "%v", err)
		return nil
	}
	v, err := parseJSON(data)
	if err != nil {
		sc.ps.errorf(mfile, "", "%v", err)
		return nil
	}
	w := walker{file: mfile, ps: sc.ps}
	m, ok := v.(map[string]any)
	if !ok {
		sc.ps.errorf(mfile, "", "must be a JSON object, got %s", jsonType(v))
		return nil
	}
	// The version comes first: a manifest of another version is skipped
	// whatever else it holds, since its format is unknown.
	ver, ok := m["version"]
	if !ok {
		sc.ps.errorf(mfile, "", `missing required key "version"`)
		return nil
	}
	n, ok := w.integer("version", ver)
	if !ok {
		return nil
	}
	if n != ManifestVersion {
		sc.ps.warnf(mfile, "version", "skipped: this is a version %d manifest, Zoe reads version %d only", n, ManifestVersion)
		return nil
	}
	if _, ok := w.object("", m, []string{"version", "zapps"}, nil); !ok {
		return nil
	}
	arr, ok := m["zapps"].([]any)
	if !ok {
		sc.ps.errorf(mfile, "zapps", "must be an array, got %s", jsonType(m["zapps"]))
		return nil
	}
	legacy := slices.ContainsFunc(arr, func(item any) bool {
		o, ok := item.(map[string]any)
		_, has := o["guest_access"]
		return ok && has
	})
	var out []*Entry
	for i, item := range arr {
		if e := sc.entry(w, sub, i, item, legacy); e != nil {
			out = append(out, e)
		}
	}
	return out
}

// entry reads entry i of a manifest; nil when it has an error.
func (sc *scanner) entry(w walker, sub string, i int, item any, legacy bool) *Entry {
	path := index("zapps", i)
	before := sc.ps.errors()
	m, _ := w.object(path, item,
		[]string{"category", "name", "description", "readable_descr", "parameters"},
		[]string{"logo", "labels", "enabled_for", "disabled_for", "guest_access"})
	if m == nil {
		return nil
	}
	e := &Entry{ID: fmt.Sprintf("%s-%d", sub, i), Dir: sub, Index: i, limits: sc.limits, Legacy: legacy}
	e.Category, _ = w.str(path, m, "category")
	e.Name, _ = w.str(path, m, "name")
	e.ZAppFile, _ = w.str(path, m, "description")
	e.DescriptionFile, _ = w.str(path, m, "readable_descr")
	labels, _, _ := w.strList(path, m, "labels")
	e.Labels = dedup(labels)
	sc.visibility(w, path, m, e)

	if sc.local(w, sub, path, "description", e.ZAppFile) {
		e.app = sc.zapp(sub, e.ZAppFile, join(path, "description"))
	}
	if sc.local(w, sub, path, "readable_descr", e.DescriptionFile) {
		sc.markdown(sub, join(path, "readable_descr"), e)
	}
	if pv, ok := m["parameters"]; ok {
		e.Parameters, _ = w.parseParameters(join(path, "parameters"), pv, e.app)
	}
	sc.logo(w, sub, path, m, e)
	// A ZApp file that failed is reported once, by the first entry using
	// it; e.app is nil for all of them.
	if sc.ps.errors() > before || e.app == nil {
		return nil
	}
	if len(e.Labels) > 0 {
		addLabels(e.app, e.Labels)
		if probs := zapp.Validate(e.app, sc.limits); len(probs) > 0 {
			sc.ps.errorf(w.file, join(path, "labels"), "the ZApp with these labels is invalid: %v", probs)
			return nil
		}
	}
	// The defaults must give a valid description, or the entry cannot start
	// as offered.
	if _, err := e.Apply(nil); err != nil {
		sc.ps.errorf(w.file, join(path, "parameters"), "the default values do not work: %v", err)
		return nil
	}
	return e
}

// visibility reads enabled_for, disabled_for and the legacy guest_access.
func (sc *scanner) visibility(w walker, path string, m map[string]any, e *Entry) {
	enabled, hasEnabled, _ := w.strList(path, m, "enabled_for")
	disabled, hasDisabled, _ := w.strList(path, m, "disabled_for")
	if !hasEnabled {
		enabled = []string{AllRoles}
	}
	if disabled == nil {
		disabled = []string{}
	}
	guest, hasGuest := m["guest_access"]
	if hasGuest {
		if _, ok := guest.(bool); !ok {
			w.ps.errorf(w.file, join(path, "guest_access"), "must be a boolean, got %s", jsonType(guest))
		}
	}
	switch {
	case !e.Legacy:
	case hasEnabled || hasDisabled:
		if hasGuest {
			w.ps.warnf(w.file, join(path, "guest_access"), "ignored: enabled_for and disabled_for decide who sees the entry")
		}
	case guest != true: // absent, false or not a boolean
		disabled = append(disabled, "guest")
	}
	e.EnabledFor, e.DisabledFor = enabled, disabled
}

// local checks that a file name of the manifest stays inside the entry
// directory; an empty name was already reported.
func (sc *scanner) local(w walker, sub, path, key, name string) bool {
	if name == "" {
		return false
	}
	if !filepath.IsLocal(name) {
		w.ps.errorf(w.file, join(path, key), "%q is not a file name inside the directory %s", name, sub)
		return false
	}
	return true
}

// zapp loads and validates the entry's ZApp description; its problems are
// reported against its own file, once per scan however many entries use it.
// Each entry gets its own copy, since the entry's labels are added to it.
func (sc *scanner) zapp(sub, name, key string) *zapp.App {
	file := sc.file(sub, name)
	if app, seen := sc.apps[file]; seen {
		if app == nil {
			return nil
		}
		return app.Clone()
	}
	app := sc.loadZApp(sub, name, key)
	sc.apps[file] = app
	if app == nil {
		return nil
	}
	return app.Clone()
}

func (sc *scanner) loadZApp(sub, name, key string) *zapp.App {
	file := sc.file(sub, name)
	data, err := sc.read(sub, name)
	if err != nil {
		sc.ps.errorf(file, "", "the ZApp description (%s %s): %v", ManifestFile, key, err)
		return nil
	}
	app, err := zapp.Load(data, sc.limits)
	if err == nil && app != nil {
		return app
	}
	if err == nil {
		err = errors.New("invalid ZApp description")
	}
	var probs zapp.Problems
	if !errors.As(err, &probs) {
		sc.ps.errorf(file, "", "%v", err)
		return nil
	}
	for _, p := range probs {
		sc.ps.errorf(file, p.Path, "%s", p.Message)
	}
	if len(probs) == 0 {
		sc.ps.errorf(file, "", "invalid ZApp description")
	}
	return nil
}

func (sc *scanner) markdown(sub, key string, e *Entry) {
	file := sc.file(sub, e.DescriptionFile)
	data, err := sc.read(sub, e.DescriptionFile)
	if err != nil {
		sc.ps.errorf(file, "", "the Markdown description (%s %s): %v", ManifestFile, key, err)
		return
	}
	html, err := sc.md.render(data)
	if err != nil {
		sc.ps.errorf(file, "", "%v", err)
		return
	}
	e.DescriptionHTML = html
}

// logo finds the entry's logo. A missing logo is only a warning: the entry
// works without it.
func (sc *scanner) logo(w walker, sub, path string, m map[string]any, e *Entry) {
	name := DefaultLogo
	if _, ok := m["logo"]; ok {
		n, ok := w.str(path, m, "logo")
		if !ok {
			return
		}
		name = n
	}
	if !filepath.IsLocal(name) {
		w.ps.warnf(w.file, join(path, "logo"), "refused: %q is not a file name inside the directory %s; the entry has no logo", name, sub)
		return
	}
	fi, err := sc.root.Stat(filepath.Join(sub, name))
	switch {
	case err != nil:
		w.ps.warnf(sc.file(sub, name), "", "the entry %s has no logo: %v", e.ID, bare(err))
	case !fi.Mode().IsRegular():
		w.ps.warnf(sc.file(sub, name), "", "the entry %s has no logo: not a regular file", e.ID)
	default:
		e.Logo = name
		e.logoPath = filepath.Join(sc.abs, sub, name)
	}
}

// bare strips the operation and path of a file error: the problem already
// names the file, and "statat" would only puzzle a reader.
func bare(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// addLabels appends the manifest's labels to every service, skipping those
// it has (the original appended the whole list as one element instead).
func addLabels(app *zapp.App, labels []string) {
	for i := range app.Services {
		s := &app.Services[i]
		for _, l := range labels {
			if !slices.Contains(s.Labels, l) {
				s.Labels = append(s.Labels, l)
			}
		}
	}
}

func dedup(list []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// fingerprint digests the names, sizes, modes and times of what the shop
// holds, to tell cheaply whether it changed. Links are followed as scan
// follows them, so that a changed target counts too.
func fingerprint(dir string) [sha256.Size]byte {
	h := sha256.New()
	des, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintf(h, "error %v\n", err)
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			continue
		}
		top := filepath.Join(dir, de.Name())
		// WalkDir follows top when it is a link, not the links below it.
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(h, "%s error %v\n", p, err)
				return nil
			}
			if d.IsDir() && p != top && (strings.HasPrefix(d.Name(), ".") || strings.Count(p[len(top):], string(filepath.Separator)) >= maxDepth) {
				return filepath.SkipDir
			}
			if li, err := os.Lstat(p); err == nil {
				fmt.Fprintf(h, "%s %d %v %d\n", p, li.Size(), li.Mode(), li.ModTime().UnixNano())
			}
			if d.Type()&fs.ModeSymlink != 0 || p == top {
				if fi, err := os.Stat(p); err == nil {
					fmt.Fprintf(h, "-> %d %v %d\n", fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
				}
			}
			return nil
		})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
