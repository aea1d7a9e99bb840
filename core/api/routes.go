package api

import (
	"net/http"

	"github.com/zoe-project/zoe/client"
)

// table is every route of the API with who may call it. The route × role
// test and the OpenAPI document are built from it.
func (s *Server) table() []route {
	execQuery := []param{
		{"status", "string", "comma-separated statuses: " + statusNames()},
		{"owner", "string", "the owner's username (admins; others see their own executions only)"},
		{"name", "string", "executions whose name contains this"},
		{"limit", "integer", "page size, 1 to 500 (default 50)"},
		{"cursor", "string", "next_cursor of the previous page"},
	}
	return []route{
		{Method: "GET", Path: "/info", Access: Anyone, Summary: "Version and deployment", Response: client.Info{}, handle: s.getInfo},
		{Method: "GET", Path: "/health", Access: Anyone, Summary: "ok or degraded (503); details for admins", Response: client.Health{}, Degraded: http.StatusServiceUnavailable, handle: s.getHealth},
		{Method: "GET", Path: "/openapi.json", Access: Anyone, Summary: "This API as an OpenAPI 3 document", Produces: "application/json", handle: s.openAPI},
		{Method: "POST", Path: "/sessions", Access: Anyone, Summary: "Log in: a bearer token for the username and password", Request: client.Login{}, Response: client.Session{}, Status: http.StatusCreated, handle: s.login},
		{Method: "GET", Path: "/me", Access: SignedIn, WebGuests: true, Summary: "Who the caller is", Response: client.User{}, handle: s.me},
		{Method: "GET", Path: "/me/quota", Access: SignedIn, WebGuests: true, Summary: "The caller's quota and what their active executions take of it", Response: client.QuotaUse{}, handle: s.myQuota},
		{Method: "GET", Path: "/tokens", Access: SignedIn, WebGuests: true, Summary: "The caller's tokens", Response: client.TokenList{}, handle: s.listTokens},
		{Method: "DELETE", Path: "/tokens/{id}", Access: SignedIn, WebGuests: true, Summary: "Revoke one of the caller's tokens", Status: http.StatusNoContent, handle: s.revokeToken},
		{Method: "GET", Path: "/executions", Access: SignedIn, WebGuests: true, Summary: "Executions, newest first", Query: execQuery, Response: client.ExecutionList{}, handle: s.listExecutions},
		{Method: "POST", Path: "/executions", Access: SignedIn, WebGuests: true, Summary: "Start a ZApp description or a shop entry", Request: client.StartExecution{}, Response: client.Execution{}, Status: http.StatusCreated, handle: s.startExecution},
		{Method: "GET", Path: "/executions/{id}", Access: SignedIn, WebGuests: true, Summary: "An execution with its services, endpoints and events", Response: client.Execution{}, handle: s.getExecution},
		{Method: "POST", Path: "/executions/{id}/terminate", Access: SignedIn, WebGuests: true, Summary: "Terminate an active execution", Response: client.Execution{}, Status: http.StatusAccepted, handle: s.terminateExecution},
		{Method: "DELETE", Path: "/executions/{id}", Access: Admin, Summary: "Delete a finished execution with its logs", Status: http.StatusNoContent, handle: s.deleteExecution},
		{Method: "GET", Path: "/services/{id}", Access: SignedIn, WebGuests: true, Summary: "A service", Response: client.Service{}, handle: s.getService},
		{Method: "GET", Path: "/services/{id}/logs", Access: SignedIn, WebGuests: true, Summary: "A service's output, one line per entry", Produces: "text/plain", Query: []param{
			{"tail", "integer", "only the last N lines (0: all)"},
			{"follow", "boolean", "go on until the service ends"},
			{"timestamps", "boolean", "start each line with its RFC 3339 time"},
		}, handle: s.serviceLogs},
		{Method: "GET", Path: "/shop", Access: SignedIn, WebGuests: true, Summary: "The shop entries the caller may start", Response: client.ShopList{}, handle: s.listShop},
		{Method: "GET", Path: "/shop/{id}", Access: SignedIn, WebGuests: true, Summary: "A shop entry with its description", Response: client.ShopEntry{}, handle: s.getShopEntry},
		{Method: "GET", Path: "/shop/{id}/logo", Access: SignedIn, WebGuests: true, Summary: "A shop entry's logo", Produces: "image/*", handle: s.shopLogo},
		{Method: "GET", Path: "/stats", Access: SignedIn, WebGuests: true, Summary: "The queue; for admins also running executions and nodes", Response: client.Stats{}, handle: s.getStats},
		{Method: "GET", Path: "/events", Access: SignedIn, WebGuests: true, Summary: "Server-Sent Events of execution and service state changes (data: Event)", Produces: "text/event-stream", Query: []param{
			{"execution", "int64", "only this execution's events"},
			{"last_event_id", "int64", "resume after this cursor (or the Last-Event-ID header)"},
		}, Headers: []param{
			{"Last-Event-ID", "int64", "resume after this cursor (the id: of the last message received); the same as last_event_id"},
		}, handle: s.events},
		{Method: "GET", Path: "/users", Access: Admin, Summary: "Every user", Response: client.UserList{}, handle: s.listUsers},
		{Method: "GET", Path: "/users/{name}", Access: Admin, Summary: "A user", Response: client.User{}, handle: s.getUser},
		{Method: "PATCH", Path: "/users/{name}", Access: Admin, Summary: "Change a user's role, enabled flag, quota or e-mail address; disabling revokes their tokens", Request: client.UserUpdate{}, Response: client.User{}, handle: s.updateUser},
		{Method: "GET", Path: "/users/{name}/tokens", Access: Admin, Summary: "A user's tokens", Response: client.TokenList{}, handle: s.listUserTokens},
		{Method: "DELETE", Path: "/users/{name}/tokens/{id}", Access: Admin, Summary: "Revoke one of a user's tokens", Status: http.StatusNoContent, handle: s.revokeUserToken},
		{Method: "GET", Path: "/quotas", Access: Admin, Summary: "Every quota", Response: client.QuotaList{}, handle: s.listQuotas},
		{Method: "POST", Path: "/quotas", Access: Admin, Summary: "Create a quota", Request: client.Quota{}, RequestSchema: newQuotaSchema, Response: client.Quota{}, Status: http.StatusCreated, handle: s.createQuota},
		{Method: "GET", Path: "/quotas/{name}", Access: Admin, Summary: "A quota", Response: client.Quota{}, handle: s.getQuota},
		{Method: "PUT", Path: "/quotas/{name}", Access: Admin, Summary: "Change a quota's limits", Request: client.Quota{}, RequestSchema: quotaChangeSchema, Response: client.Quota{}, handle: s.updateQuota},
		{Method: "DELETE", Path: "/quotas/{name}", Access: Admin, Summary: "Delete a quota; its users get their role's default", Status: http.StatusNoContent, handle: s.deleteQuota},
		{Method: "GET", Path: "/logins", Access: Admin, Summary: "Failed logins and the locks they hold, password checks and connections", Response: client.Logins{}, handle: s.getLogins},
		{Method: "GET", Path: "/plugins", Access: Admin, Summary: "The plugin processes and their states", Response: client.PluginList{}, handle: s.listPlugins},
	}
}
