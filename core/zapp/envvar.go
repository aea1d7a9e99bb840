package zapp

import (
	"encoding/json"
	"fmt"
)

// MarshalJSON writes the [name, value] pair of the format.
func (e EnvVar) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]string{e.Name, e.Value})
}

// UnmarshalJSON reads a [name, value] pair.
func (e *EnvVar) UnmarshalJSON(b []byte) error {
	var pair []string
	if err := json.Unmarshal(b, &pair); err != nil || len(pair) != 2 {
		return fmt.Errorf("an environment variable is a [name, value] pair of strings")
	}
	e.Name, e.Value = pair[0], pair[1]
	return nil
}
