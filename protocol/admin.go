package protocol

// MaxAdminTokens is the most tokens an admin line may hold, as in gearmand.
const MaxAdminTokens = 5

// Fields splits an admin text line the way gearmand does: on spaces, with
// runs of spaces collapsed and trailing spaces ignored; a leading space makes
// the first token empty (so the command is unknown); tabs are not
// separators. Tokens are appended to dst[:0] and alias line. ok is false when
// the line holds more than MaxAdminTokens tokens.
func Fields(line []byte, dst [][]byte) (tokens [][]byte, ok bool) {
	tokens = dst[:0]
	i := 0
	for {
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		if len(tokens) == MaxAdminTokens {
			return tokens, false
		}
		tokens = append(tokens, line[i:j:j])
		for j < len(line) && line[j] == ' ' {
			j++
		}
		if j >= len(line) {
			return tokens, true
		}
		i = j
	}
}
