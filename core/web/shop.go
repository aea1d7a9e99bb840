package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/core/config"
)

func (h *Handler) shopRoutes() {
	h.handle("GET /shop", h.shop)
	h.handle("GET /shop/{id}", h.startPage)
	h.handle("POST /shop/{id}", h.start)
	h.handle("GET /shop/{id}/logo", h.logo)
	h.handle("GET /upload", h.uploadPage)
	h.handle("POST /upload", h.upload)
}

// shopEntry is an entry as a page shows it.
type shopEntry struct {
	client.ShopEntry
	// About is the entry's description as HTML: the shop renders it from
	// Markdown and sanitises it; it is sanitised here again, as the pages
	// never trust HTML they did not write.
	About template.HTML
}

func (h *Handler) sanitised(html string) template.HTML {
	//nolint:gosec // sanitised by bluemonday's policy for user content
	return template.HTML(h.policy.Sanitize(html))
}

// maxShopDetails bounds the entries whose description the shop page
// shows (one API call each).
const maxShopDetails = 100

type category struct {
	Name    string
	Entries []shopEntry
}

func (h *Handler) shop(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	list, err := c.Shop(r.Context())
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	var cats []category
	for i, e := range list.Entries {
		// The list leaves the descriptions out; a shop is small, and
		// the pages show each entry's.
		if i < maxShopDetails {
			if full, err := c.ShopEntry(r.Context(), e.ID); err == nil {
				e = *full
			}
		}
		i := slices.IndexFunc(cats, func(c category) bool { return c.Name == e.Category })
		if i < 0 {
			cats = append(cats, category{Name: e.Category})
			i = len(cats) - 1
		}
		cats[i].Entries = append(cats[i].Entries, shopEntry{ShopEntry: e, About: h.sanitised(e.DescriptionHTML)})
	}
	slices.SortStableFunc(cats, func(a, b category) int { return strings.Compare(a.Name, b.Name) })
	p.Title, p.Data = "ZApp shop", cats
	h.render(w, http.StatusOK, "shop", p)
}

// logo passes the API's answer on, with its content type and caching.
func (h *Handler) logo(w http.ResponseWriter, r *http.Request) {
	c, _, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	img, ct, err := c.ShopLogo(r.Context(), r.PathValue("id"))
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	w.Header().Set("Cache-Control", "private, max-age=300")
	_, _ = w.Write(img)
}

// summary is what a page shows of a ZApp description.
type summary struct {
	Name     string `json:"name"`
	Services []struct {
		Name           string `json:"name"`
		Image          string `json:"image"`
		TotalCount     int    `json:"total_count"`
		EssentialCount int    `json:"essential_count"`
		Resources      struct {
			Memory struct {
				Min int64 `json:"min"`
			} `json:"memory"`
			Cores struct {
				Min float64 `json:"min"`
			} `json:"cores"`
		} `json:"resources"`
		Ports []struct {
			Name       string `json:"name"`
			PortNumber int    `json:"port_number"`
			Proxy      bool   `json:"proxy"`
		} `json:"ports"`
		Volumes []struct {
			Name     string `json:"name"`
			Path     string `json:"path"`
			ReadOnly bool   `json:"read_only"`
		} `json:"volumes"`
		WorkDir string `json:"work_dir"`
	} `json:"services"`
}

func summarise(desc json.RawMessage) summary {
	var s summary
	_ = json.Unmarshal(desc, &s) // the API's own, validated: a part it lacks is shown empty
	return s
}

// field is one input of the start page.
type field struct {
	ID, Name, Label, Help, Type, Value, Error string
	Min, Max, Step                            string
}

type startData struct {
	Entry   shopEntry
	Summary summary
	Name    field
	Params  []field
	// Resources are the memory and cores of each service, for the roles
	// that may change them; nil for guests.
	Resources []serviceFields
	// Errors are the API's problems that belong to no field.
	Errors []string
}

// serviceFields are the inputs of one service's resources.
type serviceFields struct {
	Service       string
	Memory, Cores field
}

func (h *Handler) startPage(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	e, err := c.ShopEntry(r.Context(), r.PathValue("id"))
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	h.showStart(w, p, http.StatusOK, e, nil, nil, nil)
}

// showStart renders an entry's start page with the values sent (nil: the
// defaults), the API's error, and the problems found here, by the JSON
// path of their field.
func (h *Handler) showStart(w http.ResponseWriter, p page, status int, e *client.ShopEntry, values map[string]string,
	apiErr *client.APIError, local map[string]string) {
	d := startData{Entry: shopEntry{ShopEntry: *e, About: h.sanitised(e.DescriptionHTML)}, Summary: summarise(e.Description)}
	name := e.Name
	if values != nil {
		name = values["name"]
	}
	d.Name = field{ID: "exec-name", Name: "name", Label: "Execution name", Type: "text", Value: name, Max: "128",
		Help: "A name to find this execution by."}
	byField := map[string]*field{"name": &d.Name}
	for i, sp := range e.Parameters {
		f := field{ID: "param-" + strconv.Itoa(i), Name: "p." + sp.Key, Label: cmpOr(sp.ReadableName, sp.Name), Help: sp.Description, Type: "text"}
		if sp.Default != nil {
			f.Value = *sp.Default
		}
		if v, ok := values[f.Name]; ok {
			f.Value = v
		}
		if sp.Type == "int" {
			f.Type = "number"
			if sp.Min != 0 || sp.Max != 0 {
				f.Min, f.Max = strconv.FormatInt(sp.Min, 10), strconv.FormatInt(sp.Max, 10)
				f.Help = strings.TrimSpace(f.Help + fmt.Sprintf(" A whole number from %d to %d.", sp.Min, sp.Max))
			}
			if sp.Step > 0 {
				f.Step = strconv.FormatInt(sp.Step, 10)
			}
		}
		d.Params = append(d.Params, f)
	}
	for i := range d.Params {
		byField["shop.parameters."+strings.TrimPrefix(d.Params[i].Name, "p.")] = &d.Params[i]
	}
	if !p.Guest() {
		for i, sv := range d.Summary.Services {
			f := serviceFields{Service: sv.Name,
				Memory: field{ID: fmt.Sprintf("res-%d-memory", i), Name: "r." + sv.Name + ".memory", Type: "text",
					Label: sv.Name + ": memory of each instance", Value: sizeText(sv.Resources.Memory.Min),
					Help: "A size in bytes or with a unit: 512MiB, 2GiB (KiB, MiB, GiB, TiB; KB, MB, GB, TB). " +
						entryValue(sizeText(sv.Resources.Memory.Min))},
				Cores: field{ID: fmt.Sprintf("res-%d-cores", i), Name: "r." + sv.Name + ".cores", Type: "number",
					Label: sv.Name + ": cores of each instance", Value: coresText(sv.Resources.Cores.Min), Min: "0", Step: "any",
					Help: "A number of cores, fractions allowed: 0.5, 1.5. " + entryValue(coresText(sv.Resources.Cores.Min))},
			}
			if v, ok := values[f.Memory.Name]; ok {
				f.Memory.Value = v
			}
			if v, ok := values[f.Cores.Name]; ok {
				f.Cores.Value = v
			}
			d.Resources = append(d.Resources, f)
		}
		for i := range d.Resources {
			r := &d.Resources[i]
			byField["shop.resources."+r.Service] = &r.Memory
			byField["shop.resources."+r.Service+".memory"] = &r.Memory
			byField["shop.resources."+r.Service+".cores"] = &r.Cores
		}
	}
	if apiErr != nil {
		d.Errors = fieldErrors(apiErr, byField)
	}
	for path, msg := range local {
		if f, ok := byField[path]; ok {
			f.Error = msg
		} else {
			d.Errors = append(d.Errors, msg)
		}
	}
	if len(local) > 0 && apiErr == nil {
		d.Errors = append([]string{"Some values are not valid: see beside each field."}, d.Errors...)
	}
	p.Title, p.Data = e.Name, d
	h.render(w, status, "start", p)
}

// sizeText writes bytes as the start page's memory fields take them: in
// the largest binary unit they are a whole number of; "" for none.
func sizeText(n int64) string {
	if n <= 0 {
		return ""
	}
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// entryValue says what the entry asks for, beside a field that may
// change it.
func entryValue(v string) string {
	if v == "" {
		return "The entry leaves it to Zoe's default."
	}
	return "The entry asks for " + v + "."
}

func coresText(f float64) string {
	if f <= 0 {
		return ""
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// fieldErrors puts each of the API's problems next to the field its
// path names and returns the others (the message first).
func fieldErrors(ae *client.APIError, byField map[string]*field) []string {
	var rest []string
	probs := ae.Problems()
	if len(probs) == 0 {
		return []string{ae.Message()}
	}
	rest = append(rest, ae.Message())
	for _, pr := range probs {
		if f, ok := byField[pr.Path]; ok {
			f.Error = strings.TrimSpace(f.Error + " " + pr.Message)
			continue
		}
		rest = append(rest, pr.String())
	}
	return rest
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	e, err := c.ShopEntry(r.Context(), r.PathValue("id"))
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	values := map[string]string{"name": r.PostFormValue("name")}
	params := map[string]string{}
	for _, sp := range e.Parameters {
		if v, ok := r.PostForm["p."+sp.Key]; ok && len(v) > 0 {
			values["p."+sp.Key] = v[0]
			// A number field left empty asks for nothing: the entry's
			// default stays (for a default of null, the ZApp's own
			// value, as the parameter's help says), where "" would be
			// refused as no number. An empty string is a string's value.
			if sp.Type == "int" && strings.TrimSpace(v[0]) == "" {
				continue
			}
			params[sp.Key] = strings.TrimSpace(v[0])
		}
	}
	res, local := formResources(r, summarise(e.Description), values)
	if len(local) > 0 {
		h.showStart(w, p, http.StatusBadRequest, e, values, nil, local)
		return
	}
	ex, err := c.StartExecution(r.Context(), client.StartExecution{Name: values["name"],
		Shop: &client.ShopStart{ID: e.ID, Parameters: params, Resources: res}})
	var ae *client.APIError
	// A wrong value, or more than the quota leaves: the form again, to
	// change what was asked.
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Body.Code == client.CodeQuotaExceeded) {
		h.showStart(w, p, ae.Status, e, values, ae, nil)
		return
	}
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	h.redirect(w, r, "/executions/"+strconv.FormatInt(ex.ID, 10))
}

// formResources reads the services' memory and cores from the start
// form into values (as sent, to show again) and the resources to ask for:
// only those that differ from the entry's, so that a form sent as shown
// changes nothing. Whatever the role: the API refuses what a role may
// not ask. local are the values that cannot be read, by JSON path.
func formResources(r *http.Request, sum summary, values map[string]string) (map[string]client.ServiceResources, map[string]string) {
	res := map[string]client.ServiceResources{}
	local := map[string]string{}
	for _, sv := range sum.Services {
		var out client.ServiceResources
		path := "shop.resources." + sv.Name
		if v := strings.TrimSpace(r.PostFormValue("r." + sv.Name + ".memory")); v != "" {
			values["r."+sv.Name+".memory"] = v
			n, err := config.ParseSize(v)
			switch {
			case err != nil:
				local[path+".memory"] = fmt.Sprintf("%q is not a size: write a number of bytes or one with a unit, e.g. 512MiB or 2GiB.", v)
			case n != sv.Resources.Memory.Min:
				out.Memory = &n
			}
		}
		if v := strings.TrimSpace(r.PostFormValue("r." + sv.Name + ".cores")); v != "" {
			values["r."+sv.Name+".cores"] = v
			f, err := strconv.ParseFloat(v, 64)
			switch {
			case err != nil || math.IsInf(f, 0) || math.IsNaN(f):
				local[path+".cores"] = fmt.Sprintf("%q is not a number of cores, e.g. 0.5 or 2.", v)
			case f != sv.Resources.Cores.Min:
				out.Cores = &f
			}
		}
		if out.Memory != nil || out.Cores != nil {
			res[sv.Name] = out
		}
	}
	if len(res) == 0 {
		res = nil
	}
	return res, local
}

type uploadData struct {
	Name, Description string
	Errors            []string
}

// uploadPage is the form for a ZApp description of one's own; ?from=<shop
// entry> fills it with that entry's description, to change its services'
// memory, cores or anything else before starting it.
func (h *Handler) uploadPage(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	if p.Guest() {
		h.errorPage(w, r, http.StatusForbidden, "Guests may start the shop's ZApps only.")
		return
	}
	d := uploadData{}
	if from := r.URL.Query().Get("from"); from != "" {
		e, err := c.ShopEntry(r.Context(), from)
		if err != nil {
			h.apiFailed(w, r, err)
			return
		}
		var b bytes.Buffer
		if err := json.Indent(&b, e.Description, "", "  "); err == nil {
			d.Name, d.Description = e.Name, b.String()
		}
	}
	p.Title, p.Data = "Start your own ZApp", d
	h.render(w, http.StatusOK, "upload", p)
}

// upload starts a ZApp description sent as a file or pasted; the API
// judges it (guests are refused there too) and every problem is listed
// with its JSON path.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) {
	c, p, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	d := uploadData{Name: r.PostFormValue("name"), Description: r.PostFormValue("description")}
	if r.MultipartForm != nil {
		if fhs := r.MultipartForm.File["file"]; len(fhs) > 0 && fhs[0].Size > 0 {
			f, err := fhs[0].Open()
			if err == nil {
				var b []byte
				b, err = io.ReadAll(io.LimitReader(f, maxFormSize))
				_ = f.Close()
				d.Description = string(b)
			}
			if err != nil {
				h.errorPage(w, r, http.StatusBadRequest, "The file could not be read: "+err.Error())
				return
			}
		}
	}
	show := func(status int, errs ...string) {
		p.Title, d.Errors = "Start your own ZApp", errs
		h.render(w, status, "upload", p)
	}
	p.Data = &d
	desc := []byte(strings.TrimSpace(d.Description))
	if len(desc) == 0 {
		show(http.StatusBadRequest, "Give a ZApp description: choose a file or paste it.")
		return
	}
	if err := json.Unmarshal(desc, new(any)); err != nil {
		show(http.StatusBadRequest, "The description is not valid JSON: "+jsonProblem(desc, err))
		return
	}
	ex, err := c.StartExecution(r.Context(), client.StartExecution{Name: d.Name, Description: desc})
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		show(http.StatusBadRequest, fieldErrors(ae, nil)...)
		return
	}
	if err != nil {
		h.apiFailed(w, r, err)
		return
	}
	h.redirect(w, r, "/executions/"+strconv.FormatInt(ex.ID, 10))
}

// jsonProblem says where JSON does not parse: line and column.
func jsonProblem(b []byte, err error) string {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return err.Error()
	}
	before := b[:min(int(se.Offset), len(b))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - (bytes.LastIndexByte(before, '\n') + 1)
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}
