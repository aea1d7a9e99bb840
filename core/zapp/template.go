package zapp

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Environment values are Python str.format templates, as in the original:
// {name} is a variable, {{ and }} are literal braces. Only plain names are
// supported, not format specs or conversions.

// Template variables of environment values.
const (
	varUserName       = "user_name"
	varExecutionID    = "execution_id"
	varExecutionName  = "execution_name"
	varDeploymentName = "deployment_name"
	varDNSPrefix      = "dns_name#"
	varDNSSelf        = "dns_name#self"
)

// scanTemplate splits s into literal text and variables, calling lit and
// variable in order, and returns the first syntax error ("" for none).
// Nothing is called after an error.
func scanTemplate(s string, lit func(string), variable func(string)) string {
	if indexBrace(s) < 0 {
		lit(s)
		return ""
	}
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				lit(s[start : i+1])
				i++
				start = i + 1
				continue
			}
			end := indexBrace(s[i+1:])
			if end < 0 || s[i+1+end] == '{' {
				return fmt.Sprintf(`unbalanced "{" at character %d: write "{{" for a literal brace`, charPos(s, i))
			}
			name := s[i+1 : i+1+end]
			if name == "" {
				return fmt.Sprintf(`empty "{}" at character %d: name a variable, or write "{{}}" for literal braces`, charPos(s, i))
			}
			lit(s[start:i])
			variable(name)
			i += end + 1
			start = i + 1
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				lit(s[start : i+1])
				i++
				start = i + 1
				continue
			}
			return fmt.Sprintf(`single "}" at character %d: write "}}" for a literal brace`, charPos(s, i))
		}
	}
	lit(s[start:])
	return ""
}

func charPos(s string, byteIndex int) int { return utf8.RuneCountInString(s[:byteIndex]) + 1 }

// knownVariables lists the variables for messages; instances describes the
// instances a {dns_name#...} may name.
func knownVariables(instances string) string {
	return "the known variables are {user_name}, {execution_id}, {execution_name}, {deployment_name}, " +
		"{dns_name#self} and {dns_name#<instance>} for an instance of this ZApp (" + instances + ")"
}

func isPlainVariable(name string) bool {
	switch name {
	case varUserName, varExecutionID, varExecutionName, varDeploymentName, varDNSSelf:
		return true
	}
	return false
}

// instanceSet holds the instances a description creates, as its services'
// names and counts; names are compared exactly, as the original did.
type instanceSet map[string]int

func newInstanceSet(services []Service) instanceSet {
	set := make(instanceSet, len(services))
	for _, s := range services {
		if _, dup := set[s.Name]; !dup {
			set[s.Name] = s.TotalCount
		}
	}
	return set
}

// has tells whether name is <service name><n> for some service and n below
// its total_count. A name ending in digits may split several ways (web10 is
// web's 10th or web1's 0th), so every split is tried.
func (set instanceSet) has(name string) bool {
	for k := len(name) - 1; k > 0 && isDigit(name[k]); k-- {
		digits := name[k:]
		if len(digits) > 1 && digits[0] == '0' {
			continue
		}
		if total, ok := set[name[:k]]; ok {
			if n, err := strconv.Atoi(digits); err == nil && n < total {
				return true
			}
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// indexBrace is strings.IndexAny(s, "{}") without building a set per call.
func indexBrace(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '{' || s[i] == '}' {
			return i
		}
	}
	return -1
}

// listInstances writes the instances of services compactly: web0, web1,
// worker0 … worker9.
func listInstances(services []Service) string {
	var b strings.Builder
	for _, s := range services {
		if s.TotalCount <= 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		switch s.TotalCount {
		case 1:
			b.WriteString(s.Name + "0")
		case 2:
			b.WriteString(s.Name + "0, " + s.Name + "1")
		default:
			fmt.Fprintf(&b, "%s0 … %s%d", s.Name, s.Name, s.TotalCount-1)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// instanceCollision tells whether groups a and b (lower-cased names, as
// DNS names are), a's name a prefix of b's, create an instance name twice:
// web (12 instances) and web1 both create web10.
func instanceCollision(a string, aTotal int, b string, bTotal int) bool {
	if len(a) >= len(b) || !strings.HasPrefix(b, a) || bTotal < 1 {
		return false
	}
	suffix := b[len(a):]
	if suffix[0] == '0' {
		return false // a's counters have no leading zero
	}
	for i := 0; i < len(suffix); i++ {
		if !isDigit(suffix[i]) {
			return false
		}
	}
	// b's first instance, <b>0, is a's <suffix>0; later ones are larger.
	n, err := strconv.Atoi(suffix + "0")
	return err == nil && n < aTotal
}
