// Package client is the Go client of Zoe's HTTP API v1 and the JSON
// documents it exchanges; the core's API server (core/api) encodes the
// same types. The zoe command-line tool is built on it.
//
// # Routes
//
// Every route is under /api/v1. Who may call it: "anyone" needs no
// credentials; "signed-in" needs a user or an admin (guests get 403, no
// credentials 401); "admin" needs an admin. Credentials are a bearer token
// (POST /sessions) or HTTP Basic on every call.
//
//	GET    /info                        anyone     Info
//	GET    /health                      anyone     Health (details for admins)
//	GET    /openapi.json                anyone     the OpenAPI 3 document
//	POST   /sessions                    anyone     Login → Session (201); the password is checked by the auth plugins
//	GET    /me                          signed-in  User
//	GET    /tokens                      signed-in  TokenList (the caller's)
//	DELETE /tokens/{id}                 signed-in  revoke one of the caller's tokens (204)
//	GET    /executions                  signed-in  ExecutionList; ?status=a,b&owner=&name=&limit=&cursor= (owner: admins; others see their own)
//	POST   /executions                  signed-in  StartExecution → Execution (201)
//	GET    /executions/{id}             signed-in  Execution with services, endpoints and events (owner or admin)
//	POST   /executions/{id}/terminate   signed-in  Execution (202) (owner or admin)
//	DELETE /executions/{id}             admin      delete a finished execution and its logs (204); 409 when active
//	GET    /services/{id}               signed-in  Service (owner or admin)
//	GET    /services/{id}/logs          signed-in  text/plain lines; ?tail=N&follow=true&timestamps=true
//	GET    /shop                        signed-in  ShopList (entries visible to the caller's role)
//	GET    /shop/{id}                   signed-in  ShopEntry
//	GET    /shop/{id}/logo              signed-in  the logo image
//	GET    /stats                       signed-in  Stats (queue; admins also running and nodes)
//	GET    /events                      signed-in  text/event-stream of Event (the caller's; admins all); ?execution=ID; resumable with Last-Event-ID
//	GET    /users                       admin      UserList
//	GET    /users/{name}                admin      User
//	PATCH  /users/{name}                admin      UserUpdate → User
//	GET    /quotas                      admin      QuotaList
//	POST   /quotas                      admin      Quota → Quota (201)
//	GET    /quotas/{name}               admin      Quota
//	PUT    /quotas/{name}               admin      Quota → Quota
//	DELETE /quotas/{name}               admin      (204); the role defaults cannot be deleted
//	GET    /plugins                     admin      PluginList
//
// Errors are an Error document with the status of its code.
package client
