from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rewards', '0002_reward_min_tier'),
    ]

    operations = [
        migrations.AddField(
            model_name='reward',
            name='installed_on_site',
            field=models.BooleanField(default=False, help_text='Delivered to the partner and set up there (a showroom display, say): orders need an address.', verbose_name='delivered and set up on site'),
        ),
        migrations.AddField(
            model_name='redemptionorder',
            name='request_fingerprint',
            field=models.CharField(blank=True, help_text='sha-256 of what the checkout asked for (account, lines, address): a repeat of the checkout key must ask for the same. Empty on orders placed before it was recorded.', max_length=64),
        ),
    ]
