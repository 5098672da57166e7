# SPDX-License-Identifier: Apache-2.0
from listserv.cli import main

main()
