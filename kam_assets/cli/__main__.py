from kam_assets.cli import run

run()
