package sdk

// Schema describes a plugin's configuration block. The core decodes the
// user's HCL block against it, with diagnostics at the user's file and line,
// and hands the result to Configure as JSON.
type Schema struct {
	Attributes []Attribute
	Blocks     []Block
}

// Attribute is one `name = value` of a configuration block.
type Attribute struct {
	Name string
	// Type is an HCL type expression: "string", "number", "bool",
	// "list(string)", "map(string)", ...
	Type     string
	Required bool
	// Default is the value used when the attribute is absent (nil for none);
	// it is encoded as JSON and must match Type.
	Default any
	Help    string
	// Sensitive marks secrets (passwords, keys): tools that show a plugin's
	// schema or configuration must hide such values. The core never logs
	// plugin configuration values at all.
	Sensitive bool
}

// Nesting says how often a nested block may appear.
type Nesting int

const (
	// NestingSingle: at most one block (exactly one when MinItems is 1).
	NestingSingle Nesting = iota + 1
	// NestingList: any number of unlabelled blocks, decoded as a JSON array.
	NestingList
	// NestingMap: blocks with one label each, decoded as a JSON object keyed
	// by label.
	NestingMap
)

// Block is a nested block of a configuration block.
type Block struct {
	Name     string
	Nesting  Nesting
	Schema   Schema
	Help     string
	MinItems int
	MaxItems int
}

// ReservedAttributes are the attributes the core itself reads in every
// plugin block; a plugin's schema cannot use them.
func ReservedAttributes() []string {
	return []string{"checksum", "start_timeout", "binary"}
}
