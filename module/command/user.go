package command

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func userPath(id string) string {
	return "/tokengate/users/" + url.PathEscape(id)
}

// userFlag adds the required --user flag.
func userFlag(cmd *cobra.Command, user *string) {
	cmd.Flags().StringVar(user, "user", "", "User id, as in the sub claim of the user's JWT (required)")
	_ = cmd.MarkFlagRequired("user")
}

func personalTokenIssueCommand() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "issue --user <id>",
		Short: "Issues a personal API token for a user and prints it",
		Long: `Issues a personal API token for the user
(POST /tokengate/users/<id>/personal-token) and prints it. An earlier
personal token of the user stops working at once. The token is shown
only this once.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cli, _ []string) error {
			if err := nonEmpty("--user", user); err != nil {
				return err
			}
			answer, err := c.api.call(http.MethodPost, userPath(user)+"/personal-token", nil)
			if err != nil {
				return err
			}
			if c.json {
				err = c.printRaw(answer)
			} else {
				var issued struct {
					Token     string `json:"token"`
					CreatedAt string `json:"created_at"`
				}
				if err := json.Unmarshal(answer, &issued); err != nil {
					return fmt.Errorf("decoding the admin API's answer: %w", err)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintf(tw, "user\t%s\n", printable(user))
				fmt.Fprintf(tw, "token\t%s\n", printable(issued.Token))
				fmt.Fprintf(tw, "created_at\t%s\n", orDash(issued.CreatedAt))
				err = tw.Flush()
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stderr, "Any earlier personal token of this user no longer works. Store this token now: it is shown only once.")
			return nil
		}),
	}
	userFlag(cmd, &user)
	return cmd
}

func personalTokenRevokeCommand() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "revoke --user <id>",
		Short: "Deactivates a user's personal API token",
		Long: `Deactivates the user's personal API token
(DELETE /tokengate/users/<id>/personal-token). It stops working at once.
Succeeds also when the user has no active personal token.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cli, _ []string) error {
			if err := nonEmpty("--user", user); err != nil {
				return err
			}
			answer, err := c.api.call(http.MethodDelete, userPath(user)+"/personal-token", nil)
			if err != nil {
				return err
			}
			if c.json {
				return c.printRaw(answer)
			}
			_, err = fmt.Fprintf(c.stdout, "User %s has no active personal token now.\n", printable(user))
			return err
		}),
	}
	userFlag(cmd, &user)
	return cmd
}

func userRevokeCommand() *cobra.Command {
	var user, client string
	cmd := &cobra.Command{
		Use:   "revoke --user <id> [--client <id>]",
		Short: "Revokes a user's grants and tokens, for one client or all",
		Long: `With --client, revokes the user's consent to that client and every
authorization code, access and refresh token of the user for it
(DELETE /tokengate/users/<id>/grants/<client>).

Without --client, revokes every consent, code and token of the user, the
personal API token included (DELETE /tokengate/users/<id>): sign out
everywhere, for off-boarding.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cli, _ []string) error {
			if err := nonEmpty("--user", user); err != nil {
				return err
			}
			path := userPath(user)
			if client != "" {
				path += "/grants/" + url.PathEscape(client)
			}
			answer, err := c.api.call(http.MethodDelete, path, nil)
			if err != nil {
				return err
			}
			if c.json {
				return c.printRaw(answer)
			}
			if client != "" {
				_, err = fmt.Fprintf(c.stdout, "Revoked the grant of user %s to client %s, with every code and token of the user for it.\n",
					printable(user), printable(client))
			} else {
				_, err = fmt.Fprintf(c.stdout, "Revoked every grant, code and token of user %s, the personal token included.\n", printable(user))
			}
			return err
		}),
	}
	userFlag(cmd, &user)
	cmd.Flags().StringVar(&client, "client", "", "Revoke only what the user granted this client")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		// An empty --client (an unset shell variable, say) must not widen
		// the command to everything of the user.
		if cmd.Flags().Changed("client") && client == "" {
			return fmt.Errorf("--client must not be empty; leave it out to revoke everything of the user")
		}
		return nil
	}
	return cmd
}
