from bsp.cli import main

raise SystemExit(main())
