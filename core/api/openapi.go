package api

import (
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zoe-project/zoe/client"
)

// openAPI serves the OpenAPI 3 document of the route table, encoded once:
// the table does not change after New.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request, _ *caller) {
	body, err := s.openAPIBody()
	if err != nil {
		s.fail(w, err)
		return
	}
	s.writeBody(w, http.StatusOK, body)
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// OpenAPI builds the OpenAPI 3 document of the routes: it cannot drift
// from them since it is made from the same table.
func (s *Server) OpenAPI() map[string]any {
	g := &schemaGen{schemas: map[string]any{}}
	errRef := g.ref(reflect.TypeFor[client.Error]())
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{
			"summary":      rt.Summary,
			"operationId":  operationID(rt),
			"x-zoe-access": rt.Access.String(),
		}
		if rt.Access == Anyone {
			op["security"] = []any{}
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": pathParamSchema(rt.Path, m[1])})
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Help, "schema": paramSchema(q.Type)})
		}
		for _, h := range rt.Headers {
			params = append(params, map[string]any{"name": h.Name, "in": "header", "description": h.Help, "schema": paramSchema(h.Type)})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Request != nil {
			schema := g.ref(reflect.TypeOf(rt.Request))
			if rt.RequestSchema != nil {
				schema = rt.RequestSchema(g)
			}
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schema}}}
		}
		status := rt.Status
		if status == 0 {
			status = http.StatusOK
		}
		ok := map[string]any{"description": http.StatusText(status)}
		switch {
		case rt.Response != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.ref(reflect.TypeOf(rt.Response))}}
		case rt.Produces == "application/json": // this document
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{
				"type": "object", "description": "an OpenAPI 3 document", "additionalProperties": true}}}
		case rt.Produces == "text/event-stream":
			// OpenAPI 3.0 cannot describe the messages of a stream: the
			// schema of each data: line is named by x-zoe-event-data.
			ok["content"] = map[string]any{rt.Produces: map[string]any{
				"schema":           map[string]any{"type": "string"},
				"x-zoe-event-data": g.ref(reflect.TypeFor[client.Event]())}}
		case strings.HasPrefix(rt.Produces, "image/"):
			ok["content"] = map[string]any{rt.Produces: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
		case rt.Produces != "":
			ok["content"] = map[string]any{rt.Produces: map[string]any{"schema": map[string]any{"type": "string"}}}
		}
		responses := map[string]any{
			strconv.Itoa(status): ok,
			"default": map[string]any{"description": "An error", "content": map[string]any{
				"application/json": map[string]any{"schema": errRef}}},
		}
		if rt.Degraded != 0 {
			// Degraded is an answer, not an error: the same document.
			responses[strconv.Itoa(rt.Degraded)] = map[string]any{
				"description": "Degraded: the store or a plugin does not answer",
				"content":     ok["content"]}
		}
		op["responses"] = responses
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "Zoe API", "version": s.cfg.Info.Version,
			"description": "Zoe's HTTP API v1. Authenticate with a bearer token (POST /sessions) or HTTP Basic."},
		"servers":  []any{map[string]any{"url": prefix}},
		"security": []any{map[string]any{"bearer": []any{}}, map[string]any{"basic": []any{}}},
		"paths":    paths,
		"components": map[string]any{
			"schemas": g.schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
				"basic":  map[string]any{"type": "http", "scheme": "basic"},
			},
		},
	}
}

// pathParamSchema is the schema of a path parameter: ids are numbers but
// for the shop's, which are the names of its directories.
func pathParamSchema(path, name string) map[string]any {
	if name == "id" && !strings.HasPrefix(path, "/shop/") {
		return paramSchema("int64")
	}
	return paramSchema("string")
}

// paramSchema is the schema of a parameter of type typ: string, boolean,
// integer (a Go int) or int64.
func paramSchema(typ string) map[string]any {
	if typ == "int64" {
		return map[string]any{"type": "integer", "format": "int64"}
	}
	return map[string]any{"type": typ}
}

// quotaBody is the body of POST /quotas (NewQuota) and of PUT
// /quotas/{name} (QuotaChange): a Quota whose limits may be left out (0:
// unlimited), and whose name may be left out of a PUT, since the path
// names it (a different one is refused).
func (g *schemaGen) quotaBody(name string, nameRequired bool) map[string]any {
	g.ref(reflect.TypeFor[client.Quota]())
	quota := g.schemas["Quota"].(map[string]any)
	props := map[string]any{}
	for k, v := range quota["properties"].(map[string]any) {
		props[k] = v
	}
	out := map[string]any{"type": "object", "properties": props,
		"description": "A quota; a limit left out is 0, unlimited."}
	if nameRequired {
		out["required"] = []string{"name"}
	} else {
		props["name"] = map[string]any{"type": "string", "description": "the quota of the path, or absent"}
	}
	g.schemas[name] = out
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// newQuotaSchema and quotaChangeSchema document the bodies of POST
// /quotas and PUT /quotas/{name} (route.RequestSchema).
func newQuotaSchema(g *schemaGen) map[string]any    { return g.quotaBody("NewQuota", true) }
func quotaChangeSchema(g *schemaGen) map[string]any { return g.quotaBody("QuotaChange", false) }

// operationID is e.g. getExecutionsId for GET /executions/{id}.
func operationID(rt route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, part := range strings.FieldsFunc(rt.Path, func(r rune) bool { return r == '/' || r == '{' || r == '}' || r == '.' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// schemaGen turns Go types into JSON schemas, named structs into
// components.
type schemaGen struct{ schemas map[string]any }

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func (g *schemaGen) ref(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"description": "any JSON value"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.ref(t.Elem())
		out := map[string]any{"nullable": true}
		if r, ok := s["$ref"]; ok {
			out["allOf"] = []any{map[string]any{"$ref": r}}
			return out
		}
		for k, v := range s {
			out[k] = v
		}
		return out
	case reflect.Struct:
		name := t.Name()
		if _, done := g.schemas[name]; !done {
			g.schemas[name] = nil // recursion guard
			g.schemas[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": g.ref(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.ref(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Float32:
		return map[string]any{"type": "number", "format": "float"}
	case reflect.Float64:
		return map[string]any{"type": "number", "format": "double"}
	case reflect.Int64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Int32:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Uint32:
		// A uid or a gid: formats that generators know (oapi-codegen
		// gives a uint32), with the bounds for those that do not.
		return map[string]any{"type": "integer", "format": "uint32", "minimum": 0, "maximum": math.MaxUint32}
	case reflect.Uint64:
		return map[string]any{"type": "integer", "format": "uint64", "minimum": 0}
	case reflect.Uint, reflect.Uint8, reflect.Uint16:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Int, reflect.Int8, reflect.Int16:
		// A Go int: a generator's default integer type.
		return map[string]any{"type": "integer"}
	}
	return map[string]any{}
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.ref(f.Type)
		if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
			required = append(required, name)
		}
	}
	out := map[string]any{"type": "object", "properties": props}
	if required != nil {
		out["required"] = required
	}
	return out
}
