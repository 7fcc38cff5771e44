"""Entry point of the session-sweeper console script."""

from session_sweeper.commands import main

if __name__ == "__main__":
    main()
