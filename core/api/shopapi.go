package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/shop"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
)

func role(c *caller) string { return string(c.user.Role) }

func (s *Server) listShop(w http.ResponseWriter, _ *http.Request, c *caller) {
	out := client.ShopList{Entries: []client.ShopEntry{}}
	if s.cfg.Shop != nil {
		for _, e := range s.cfg.Shop.Entries(role(c)) {
			out.Entries = append(out.Entries, shopEntryJSON(e, false))
		}
	}
	s.write(w, http.StatusOK, out)
}

func (s *Server) entry(w http.ResponseWriter, r *http.Request, c *caller) (*shop.Entry, bool) {
	id := r.PathValue("id")
	if s.cfg.Shop != nil {
		if e, ok := s.cfg.Shop.Entry(id, role(c)); ok {
			return e, true
		}
	}
	s.error(w, http.StatusNotFound, client.CodeNotFound, "no shop entry "+strconv.Quote(id))
	return nil, false
}

func (s *Server) getShopEntry(w http.ResponseWriter, r *http.Request, c *caller) {
	if e, ok := s.entry(w, r, c); ok {
		s.write(w, http.StatusOK, shopEntryJSON(e, true))
	}
}

func shopEntryJSON(e *shop.Entry, details bool) client.ShopEntry {
	out := client.ShopEntry{ID: e.ID, Category: e.Category, Name: e.Name, HasLogo: e.Logo != "", Labels: e.Labels}
	for _, p := range e.Parameters {
		cp := client.ShopParameter{Key: p.Key, Kind: string(p.Kind), Name: p.Name, ReadableName: p.ReadableName,
			Type: string(p.Type), Min: p.Min, Max: p.Max, Step: p.Step, Default: p.Default}
		if details {
			cp.Description = p.Description
		}
		out.Parameters = append(out.Parameters, cp)
	}
	if details {
		out.DescriptionHTML = e.DescriptionHTML
		if d, err := json.Marshal(e.App()); err == nil {
			out.Description = d
		}
	}
	return out
}

// shopDescription applies the parameters and resources to the entry:
// the description to submit, and the app it encodes (to place the
// submission's problems). ok is false when the caller sees no such entry.
func (s *Server) shopDescription(c *caller, in *client.ShopStart) (desc []byte, app *zapp.App, ok bool, err error) {
	if s.cfg.Shop == nil {
		return nil, nil, false, nil
	}
	e, ok := s.cfg.Shop.Entry(in.ID, role(c))
	if !ok {
		return nil, nil, false, nil
	}
	app, err = e.ApplyWith(in.Parameters, shopResources(in.Resources))
	if err != nil {
		return nil, nil, true, err
	}
	desc, err = json.Marshal(app)
	if err != nil {
		return nil, nil, true, fmt.Errorf("shop entry %s: encode its description: %v: %w", e.ID, err, sdk.ErrInternal)
	}
	return desc, app, true, nil
}

func shopResources(in map[string]client.ServiceResources) map[string]shop.Resources {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]shop.Resources, len(in))
	for name, r := range in {
		out[name] = shop.Resources{Memory: r.Memory, Cores: r.Cores}
	}
	return out
}

// mayCustomise says whether the caller may set the resources of a shop
// entry's services. Guests may not: they start what the shop offers as it
// is, as they may not start a description of their own (and the original
// Zoe's guests could not customise either); users and admins may, since a
// description of their own may ask for any resources within the limits.
func mayCustomise(c *caller) bool { return c.user.Role != auth.RoleGuest }

// shopSubmitError places the submission's problems with a value of
// resources (the nodes' capacity) at shop.resources; others stay as the
// submission reported them.
func shopSubmitError(err error, app *zapp.App, res map[string]client.ServiceResources) error {
	var probs zapp.Problems
	if app == nil || len(res) == 0 || !errors.As(err, &probs) {
		return err
	}
	rerrs, rest := shop.ResourceProblems(app, shopResources(res), probs)
	if len(rerrs) == 0 {
		return err
	}
	if len(rest) > 0 {
		rerrs = append(rerrs, fmt.Errorf("%w: %w", shop.ErrInvalidParameter, rest))
	}
	return errors.Join(rerrs...)
}

// resourcePath is the JSON path of a shop.ResourceError in the request.
func resourcePath(e *shop.ResourceError) string {
	p := serviceResourcesPath(e.Service)
	if e.Field != "" {
		p += "." + e.Field
	}
	return p
}

// serviceResourcesPath is the JSON path of shop.resources.<service>.
func serviceResourcesPath(service string) string {
	if serviceName.MatchString(service) {
		return "shop.resources." + service
	}
	return "shop.resources[" + strconv.Quote(service) + "]"
}

// checkShopResources decodes each value of shop.resources strictly, so
// that its problems are answered at its path: the decoding of the whole
// body names a map's values without their key. Anything else wrong is
// left to that decoding.
func checkShopResources(data []byte) error {
	var top struct {
		Shop *struct {
			Resources map[string]json.RawMessage `json:"resources"`
		} `json:"shop"`
	}
	if json.Unmarshal(data, &top) != nil || top.Shop == nil {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(top.Shop.Resources)) {
		raw := bytes.TrimSpace(top.Shop.Resources[name])
		path := serviceResourcesPath(name)
		if len(raw) == 0 || (raw[0] != '{' && string(raw) != "null") {
			return &badRequest{client.Detail{Path: path, Message: "must be an object: {\"memory\": bytes, \"cores\": a number}"}}
		}
		err := decodeJSON(bytes.NewReader(raw), new(client.ServiceResources))
		var bad *badRequest
		if errors.As(err, &bad) {
			if bad.detail.Path != "" {
				bad.detail.Path = path + "." + bad.detail.Path
			} else {
				bad.detail.Path = path
			}
			return bad
		}
	}
	return nil
}

// serviceName is what a service's name may be (zapp): a path element as
// it is.
var serviceName = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// shopLogo serves the entry's logo from inside the shop directory only
// (os.Root), with a policy that keeps an SVG's scripts from running.
func (s *Server) shopLogo(w http.ResponseWriter, r *http.Request, c *caller) {
	e, ok := s.entry(w, r, c)
	if !ok {
		return
	}
	if e.Logo == "" {
		s.error(w, http.StatusNotFound, client.CodeNotFound, "shop entry "+e.ID+" has no logo")
		return
	}
	root, err := os.OpenRoot(s.cfg.Shop.Dir())
	if err != nil {
		s.fail(w, fmt.Errorf("open the shop: %w: %w", err, sdk.ErrUnavailable))
		return
	}
	defer root.Close()
	f, err := root.Open(filepath.Join(e.Dir, e.Logo))
	if err != nil {
		s.error(w, http.StatusNotFound, client.CodeNotFound, "the logo of shop entry "+e.ID+" cannot be read")
		return
	}
	defer f.Close()
	ct := mime.TypeByExtension(filepath.Ext(e.Logo))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	w.Header().Set("Cache-Control", "private, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, io.LimitReader(f, 8<<20))
}
