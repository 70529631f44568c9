package protocol

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// TokenEnv is the environment variable the control plane and both routers
// read the bearer token from when no flag gives one. It, or a token file,
// is the preferred way to pass the token: a flag value shows in ps.
const TokenEnv = "CELLBENCH_CP_TOKEN"

// ResolveToken picks the bearer token: the flag value, else the contents of
// file (without trailing CR/LF, as editors and `echo` leave them), else
// TokenEnv; "" means no token. A flag and a file together are refused, and
// so is an empty file: it would silently turn authentication off.
func ResolveToken(flagValue, file string) (string, error) {
	switch {
	case flagValue != "" && file != "":
		return "", errors.New("give the token by flag or by file, not both")
	case flagValue != "":
		return flagValue, nil
	case file != "":
		raw, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		token := strings.TrimRight(string(raw), "\r\n")
		if token == "" {
			return "", fmt.Errorf("token file %s is empty", file)
		}
		return token, nil
	default:
		return os.Getenv(TokenEnv), nil
	}
}
