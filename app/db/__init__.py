"""The database seam: column types (types.py), the engine's setup and reads outside a
transaction (engine.py), and the database's clock (clock.py).

The models (app/models.py) and the Flask-SQLAlchemy instance
(app/extensions.py) stay where they are: everything imports them, and they
hold no difference between databases.
"""
