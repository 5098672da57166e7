# SPDX-License-Identifier: Apache-2.0
"""Email commands: what mail to the command addresses asks, and the one reply it gets.

`mail` guards the stage (auto-replies, rates), `dispatch` reads what a
message asks and sends the reply, `table` lists every command, `parse`
reads command lines; the commands themselves (`membership`, `preferences`,
`info`, `review`, `decisions`, `owner_members`, `owner_lists`, `moderate`)
parse words and call the acts. `proof` decides what a message proves about
its sender, `replay` runs owner commands once the owner confirms them.
"""
